use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::executor::block_on;
use serde_json::json;

use super::*;
use crate::ports::testing::{ports, Canned, ManualClock, ScriptedHttp};
use crate::security::ApprovalStatus;
use crate::session::InMemoryStore;

fn agent(http: Rc<ScriptedHttp>, vars: &[(&str, &str)]) -> Agent {
    agent_and_clock(http, vars).0
}

fn agent_and_clock(http: Rc<ScriptedHttp>, vars: &[(&str, &str)]) -> (Agent, Rc<ManualClock>) {
    let mut all: HashMap<String, String> = [("OPENAI_API_KEY", "k"), ("EDGECLAW_LLM_MAX_RETRIES", "0")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let config = Config::from_env(&|k| all.get(k).cloned()).unwrap();
    let (ports, clock) = ports(http);
    (Agent::new(config, ports, Rc::new(Guard::default())).unwrap(), clock)
}

fn tool_call(calls: &[(&str, &str, serde_json::Value)]) -> Canned {
    let calls: Vec<_> = calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args.to_string()}}))
        .collect();
    Canned::json(
        200,
        &json!({"choices": [{"message": {"content": null, "tool_calls": calls}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}),
    )
}

fn answer(text: &str) -> Canned {
    Canned::json(
        200,
        &json!({"choices": [{"message": {"content": text}}], "usage": {"prompt_tokens": 20, "completion_tokens": 2}}),
    )
}

fn run(agent: &Agent, store: &InMemoryStore, input: TurnInput) -> (Result<TurnReport>, Vec<TurnEvent>) {
    let events = RefCell::new(Vec::new());
    let result = block_on(agent.run_turn(store, input, false, &|e| events.borrow_mut().push(e)));
    (result, events.into_inner())
}

#[test]
fn tool_calls_run_concurrently_and_results_feed_the_next_call() {
    let http = Rc::new(ScriptedHttp::default());
    http.responses.borrow_mut().extend([
        Ok(tool_call(&[
            ("a", "calculator", json!({"expression": "2+2"})),
            ("b", "calculator", json!({"expression": "3*3"})),
        ])),
        Ok(answer("4 and 9")),
    ]);
    let agent = agent(http.clone(), &[]);
    let store = InMemoryStore::default();
    let (report, events) = run(&agent, &store, TurnInput::Message("compute".into()));
    let report = report.unwrap();
    assert_eq!((report.status, report.reply.as_str(), report.iterations), (TurnStatus::Completed, "4 and 9", 2));
    assert_eq!(report.tool_calls.iter().map(|c| c.output.as_str()).collect::<Vec<_>>(), ["4", "9"]);
    assert_eq!(report.usage, Usage { input_tokens: 30, output_tokens: 7 });
    assert!(report.cost_usd.unwrap() > 0.0);
    let names: Vec<&str> = events
        .iter()
        .map(|e| match e {
            TurnEvent::TurnStarted { .. } => "started",
            TurnEvent::ToolCallStarted { .. } => "tool_start",
            TurnEvent::ToolCallFinished(_) => "tool_end",
            TurnEvent::Usage { .. } => "usage",
            TurnEvent::TextDelta { .. } => "delta",
            TurnEvent::ApprovalRequired(_) => "approval",
        })
        .collect();
    assert_eq!(names, ["started", "usage", "tool_start", "tool_start", "tool_end", "tool_end", "usage"]);
    let second: serde_json::Value = serde_json::from_slice(&http.requests.borrow()[1].body).unwrap();
    assert_eq!(second["messages"][3], json!({"role": "tool", "tool_call_id": "a", "content": "4"}));
    let transcript = block_on(store.transcript()).unwrap();
    assert_eq!(transcript.messages.len(), 5);
    assert_eq!(transcript.turns[0].status, TurnStatus::Completed);
}

#[test]
fn unknown_tools_and_bad_arguments_go_back_to_the_model_as_errors() {
    let http = Rc::new(ScriptedHttp::default());
    let mut bad_args = tool_call(&[("b", "calculator", json!({}))]);
    bad_args.chunks = vec![Ok(br#"{"choices":[{"message":{"tool_calls":[{"id":"b","type":"function","function":{"name":"calculator","arguments":"{oops"}}]}}]}"#.to_vec())];
    http.responses.borrow_mut().extend([
        Ok(tool_call(&[("a", "no_such_tool", json!({}))])),
        Ok(bad_args),
        Ok(answer("sorry")),
    ]);
    let agent = agent(http, &[]);
    let (report, _) = run(&agent, &InMemoryStore::default(), TurnInput::Message("x".into()));
    let report = report.unwrap();
    assert!(report.tool_calls[0].is_error && report.tool_calls[0].output.contains("unknown tool `no_such_tool`"));
    assert!(report.tool_calls[1].is_error && report.tool_calls[1].output.contains("not valid JSON"));
    assert_eq!(report.status, TurnStatus::Completed);
}

#[test]
fn the_iteration_limit_stops_a_looping_model() {
    let http = Rc::new(ScriptedHttp::default());
    for i in 0..3 {
        http.responses.borrow_mut().push_back(Ok(tool_call(&[(
            ["a", "b", "c"][i],
            "calculator",
            json!({"expression": "1+1"}),
        )])));
    }
    let agent = agent(http, &[("EDGECLAW_MAX_ITERATIONS", "3")]);
    let (report, _) = run(&agent, &InMemoryStore::default(), TurnInput::Message("loop".into()));
    let report = report.unwrap();
    assert_eq!((report.status, report.iterations, report.tool_calls.len()), (TurnStatus::LimitReached, 3, 3));
    assert!(report.reply.contains("iteration limit"));
}

#[test]
fn a_token_budget_stops_the_turn_before_the_next_model_call() {
    let http = Rc::new(ScriptedHttp::default());
    for id in ["a", "b"] {
        http.responses.borrow_mut().push_back(Ok(tool_call(&[(id, "calculator", json!({"expression": "1+1"}))])));
    }
    let agent = agent(http.clone(), &[]);
    let input = TurnInput::Message("loop".into());
    // each call uses 15 tokens: a budget of 20 allows a second call, not a third
    let report = block_on(agent.run_turn_within(&InMemoryStore::default(), input, false, &|_| {}, Some(20))).unwrap();
    assert_eq!((report.status, report.iterations, http.requests.borrow().len()), (TurnStatus::LimitReached, 2, 2));
    assert!(report.reply.contains("the budget is 20"), "{}", report.reply);
}

#[test]
fn a_failed_turn_keeps_the_user_message_and_can_be_retried() {
    let http = Rc::new(ScriptedHttp::default());
    http.responses
        .borrow_mut()
        .extend([Ok(Canned::json(500, &json!({"error": {"message": "overloaded"}}))), Ok(answer("better now"))]);
    let agent = agent(http, &[]);
    let store = InMemoryStore::default();
    let (result, _) = run(&agent, &store, TurnInput::Message("hello".into()));
    assert!(result.unwrap_err().to_string().contains("overloaded"));
    let transcript = block_on(store.transcript()).unwrap();
    assert_eq!(transcript.messages.len(), 1);
    assert_eq!(transcript.turns[0].status, TurnStatus::Failed);

    let (report, _) = run(&agent, &store, TurnInput::Retry);
    let report = report.unwrap();
    assert_eq!(report.reply, "better now");
    assert_eq!(report.turn_id, transcript.turns[0].id);
    let transcript = block_on(store.transcript()).unwrap();
    assert_eq!((transcript.messages.len(), transcript.turns.len()), (2, 1));
    assert_eq!(transcript.turns[0].status, TurnStatus::Completed);

    let (again, _) = run(&agent, &store, TurnInput::Retry);
    assert!(matches!(again, Err(Error::NothingToRetry)));
}

#[test]
fn a_turn_left_running_by_a_restart_is_marked_interrupted() {
    let http = Rc::new(ScriptedHttp::default());
    http.responses.borrow_mut().push_back(Ok(answer("hi")));
    let agent = agent(http, &[]);
    let store = InMemoryStore::default();
    let stale = TurnRecord {
        id: "turn_old".into(),
        status: TurnStatus::Running,
        error: None,
        started_at: 1,
        finished_at: None,
        usage: Usage::default(),
        cost_usd: None,
    };
    block_on(store.start_turn(&stale)).unwrap();
    run(&agent, &store, TurnInput::Message("new".into())).0.unwrap();
    let turns = block_on(store.transcript()).unwrap().turns;
    assert_eq!(turns[0].status, TurnStatus::Failed);
    assert_eq!(turns[0].error.as_deref(), Some("interrupted before it finished"));
}

#[test]
fn streamed_text_is_reported_as_deltas() {
    let http = Rc::new(ScriptedHttp::default());
    http.responses.borrow_mut().push_back(Ok(Canned::sse(&[
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
    ])));
    let agent = agent(http, &[]);
    let events = RefCell::new(Vec::new());
    let report =
        block_on(agent.run_turn(&InMemoryStore::default(), TurnInput::Message("hi".into()), true, &|e| {
            events.borrow_mut().push(e)
        }))
        .unwrap();
    let deltas: String = events
        .borrow()
        .iter()
        .filter_map(|e| match e {
            TurnEvent::TextDelta { text } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!((deltas.as_str(), report.reply.as_str()), ("Hello", "Hello"));
}

#[test]
fn memory_tools_store_facts_that_later_turns_recall() {
    use crate::auth::Principal;
    use crate::memory::testing::{ConceptEmbedder, TestStore};
    use crate::memory::{Memory, MemoryOptions, Namespace};

    let http = Rc::new(ScriptedHttp::default());
    http.responses.borrow_mut().extend([
        Ok(tool_call(&[("m", "memory_write", json!({"content": "The user's cat is called Miso."}))])),
        Ok(answer("Noted.")),
        Ok(answer("Miso.")),
    ]);
    let (ports, _) = ports(http.clone());
    let store = Rc::new(TestStore::default());
    let embedder = Rc::new(ConceptEmbedder { calls: RefCell::new(vec![]) });
    let memory = Rc::new(Memory::new(store, Some(embedder), MemoryOptions::default(), ports.clock.clone()));
    let namespace = Namespace::new(&Principal::parse("alice").unwrap(), "default").unwrap();
    let agent = agent(http.clone(), &[]).with_memory(memory, namespace);
    let session = InMemoryStore::default();

    let (first, _) = run(&agent, &session, TurnInput::Message("Remember: my cat is Miso".into()));
    let first = first.unwrap();
    let saved = &first.tool_calls[0];
    assert!(!saved.is_error && saved.output.starts_with("Saved as `fact:"), "{}", saved.output);
    let (second, _) = run(&agent, &session, TurnInput::Message("What is my kitten called?".into()));
    assert_eq!(second.unwrap().reply, "Miso.");
    let last: serde_json::Value = serde_json::from_slice(&http.requests.borrow()[2].body).unwrap();
    let system = last["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("Recalled from long-term memory") && system.contains("The user's cat is called Miso."),
        "{system}"
    );
    let tools: Vec<&str> =
        last["tools"].as_array().unwrap().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert!(tools.contains(&"memory_search") && tools.contains(&"memory_delete"), "{tools:?}");
}

/// Calculator calls under rules that ask about `2+2`, refuse anything with a `6`, and allow the rest.
const CALCULATOR_RULES: &str = r#"[
    {"effect": "ask", "tool": "calculator", "arguments": "2\\+2", "timeout_ms": 60000},
    {"effect": "deny", "tool": "calc*", "arguments": "6"}
]"#;

fn paused_turn(http: &Rc<ScriptedHttp>) -> (Agent, Rc<ManualClock>, InMemoryStore, TurnReport) {
    http.responses.borrow_mut().push_back(Ok(tool_call(&[
        ("a", "calculator", json!({"expression": "2+2"})),
        ("b", "calculator", json!({"expression": "3*3"})),
        ("c", "calculator", json!({"expression": "6*7"})),
    ])));
    let (agent, clock) = agent_and_clock(http.clone(), &[("EDGECLAW_APPROVALS", CALCULATOR_RULES)]);
    let store = InMemoryStore::default();
    let (report, events) = run(&agent, &store, TurnInput::Message("compute".into()));
    let report = report.unwrap();
    assert!(events.iter().any(|e| matches!(e, TurnEvent::ApprovalRequired(a) if a.call_id == "a")));
    (agent, clock, store, report)
}

#[test]
fn an_ask_rule_pauses_the_turn_until_the_owner_approves() {
    let http = Rc::new(ScriptedHttp::default());
    let (agent, _clock, store, report) = paused_turn(&http);
    assert_eq!(report.status, TurnStatus::AwaitingApproval);
    assert_eq!(report.approvals.len(), 1);
    let approval = &report.approvals[0];
    assert_eq!((approval.tool.as_str(), approval.status), ("calculator", ApprovalStatus::Pending));
    assert!(report.reply.contains(&approval.id) && report.reply.contains("rule `ask calculator"), "{}", report.reply);
    let outputs: Vec<(&str, &str)> = report.tool_calls.iter().map(|c| (c.id.as_str(), c.output.as_str())).collect();
    assert_eq!(outputs[0], ("b", "9"));
    assert!(
        outputs[1].0 == "c"
            && outputs[1].1.starts_with("error: refused by the approval policy (rule `deny calc* /6/`)")
    );
    assert_eq!(block_on(store.last_turn()).unwrap().unwrap().status, TurnStatus::AwaitingApproval);

    // nothing else runs meanwhile, and the turn cannot go on before the answer
    for input in [TurnInput::Message("next".into()), TurnInput::Retry, TurnInput::Resume] {
        assert!(matches!(run(&agent, &store, input).0, Err(Error::AwaitingApproval)));
    }
    assert!(matches!(block_on(agent.decide_approval(&store, "apv_nope", true)), Err(Error::ApprovalNotFound(_))));

    let (decided, state) = block_on(agent.decide_approval(&store, &approval.id, true)).unwrap();
    assert_eq!((decided.status, state.ready), (ApprovalStatus::Approved, true));
    assert!(matches!(
        block_on(agent.decide_approval(&store, &approval.id, false)),
        Err(Error::ApprovalDecided(_, "approved"))
    ));
    http.responses.borrow_mut().push_back(Ok(answer("4 and 9")));
    let (resumed, _) = run(&agent, &store, TurnInput::Resume);
    let resumed = resumed.unwrap();
    assert_eq!(
        (resumed.status, resumed.reply.as_str(), resumed.turn_id.as_str()),
        (TurnStatus::Completed, "4 and 9", report.turn_id.as_str())
    );
    assert_eq!(resumed.tool_calls[0].output, "4");
    let last: serde_json::Value = serde_json::from_slice(&http.requests.borrow()[1].body).unwrap();
    let results: Vec<&str> = last["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["tool_call_id"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["b", "c", "a"], "every call has its result before the model is asked again");
    assert!(block_on(store.approvals()).unwrap().is_empty());
    assert!(matches!(run(&agent, &store, TurnInput::Resume).0, Err(Error::NotPaused)));
}

#[test]
fn a_denied_or_expired_request_is_a_refusal_the_model_is_told_about() {
    let http = Rc::new(ScriptedHttp::default());
    let (agent, _, store, report) = paused_turn(&http);
    block_on(agent.decide_approval(&store, &report.approvals[0].id, false)).unwrap();
    http.responses.borrow_mut().push_back(Ok(answer("as you wish")));
    let resumed = run(&agent, &store, TurnInput::Resume).0.unwrap();
    assert_eq!(resumed.tool_calls[0].output, "error: not run: the owner said no");

    let http = Rc::new(ScriptedHttp::default());
    let (agent, clock, store, report) = paused_turn(&http);
    let id = &report.approvals[0].id;
    let state = block_on(agent.expire_approvals(&store)).unwrap();
    assert_eq!((state.ready, state.next_deadline), (false, Some(report.approvals[0].expires_at)));
    clock.now.set(report.approvals[0].expires_at);
    assert!(matches!(block_on(agent.decide_approval(&store, id, true)), Err(Error::ApprovalDecided(_, "expired"))));
    assert_eq!(block_on(agent.expire_approvals(&store)).unwrap(), ApprovalState { ready: true, next_deadline: None });
    http.responses.borrow_mut().push_back(Ok(answer("too late")));
    let resumed = run(&agent, &store, TurnInput::Resume).0.unwrap();
    assert_eq!(resumed.tool_calls[0].output, "error: not run: nobody answered in time");
}

#[test]
fn high_risk_calls_ask_by_default() {
    let http = Rc::new(ScriptedHttp::default());
    http.responses.borrow_mut().push_back(Ok(tool_call(&[(
        "a",
        "http_fetch",
        json!({"url": "https://api.example.com/", "method": "POST", "body": "hello"}),
    )])));
    let agent = agent(http.clone(), &[]);
    let store = InMemoryStore::default();
    let report = run(&agent, &store, TurnInput::Message("post it".into())).0.unwrap();
    assert_eq!(report.status, TurnStatus::AwaitingApproval);
    assert_eq!(report.approvals[0].reason, "high-risk call (no rule applies)");
    assert_eq!(http.requests.borrow().len(), 1, "nothing was sent before the approval");
}
