//! `calculator`: exact arithmetic for the model, which is bad at it.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{string_arg, Tool, ToolError};

/// Longest expression accepted.
const MAX_EXPRESSION_CHARS: usize = 1_000;

/// Evaluates arithmetic expressions (`+ - * / ^`, parentheses, `sqrt`, `sin`, `log`, `PI`, …) in f64.
pub struct Calculator;

#[async_trait(?Send)]
impl Tool for Calculator {
    fn name(&self) -> &'static str {
        "calculator"
    }

    fn description(&self) -> &'static str {
        "Evaluate an arithmetic expression exactly, e.g. \"(17+25)*3\" or \"sqrt(2)^3/PI\". Supports + - * / ^, \
         parentheses, sqrt, exp, ln, log10, sin, cos, tan, abs, PI and E. Use it instead of doing math in your head."
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The expression to evaluate"}},
            "required": ["expression"]
        })
    }

    async fn execute(&self, arguments: Value) -> Result<String, ToolError> {
        let expression = string_arg(&arguments, "expression")?.trim();
        if expression.is_empty() || expression.len() > MAX_EXPRESSION_CHARS {
            return Err(ToolError::new(format!("the expression must have 1 to {MAX_EXPRESSION_CHARS} characters")));
        }
        let value = exmex::eval_str::<f64>(expression)
            .map_err(|e| ToolError::new(format!("cannot evaluate `{expression}`: {e}")))?;
        if !value.is_finite() {
            return Err(ToolError::new(format!("`{expression}` has no finite value")));
        }
        Ok(format_number(value))
    }
}

/// Whole numbers print without a fractional part; others with up to 12 significant decimals.
fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.12}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;

    fn calc(expression: &str) -> Result<String, ToolError> {
        block_on(Calculator.execute(json!({ "expression": expression })))
    }

    #[test]
    fn arithmetic_is_exact_and_tidy() {
        assert_eq!(calc("(17+25)*3").unwrap(), "126");
        assert_eq!(calc("7/2").unwrap(), "3.5");
        assert_eq!(calc("2^10").unwrap(), "1024");
        assert_eq!(calc("sqrt(2)").unwrap(), "1.414213562373");
    }

    #[test]
    fn bad_expressions_are_tool_errors() {
        assert!(calc("2 +* ").is_err());
        assert!(calc("1/0").unwrap_err().0.contains("finite"));
        assert!(calc("").is_err());
        assert!(block_on(Calculator.execute(json!({}))).unwrap_err().0.contains("expression"));
    }
}
