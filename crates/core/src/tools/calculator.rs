//! `calculator`: exact arithmetic for the model, which is bad at it.
//!
//! A small precedence-climbing evaluator over f64: a general expression library would bring a regex
//! engine and its Unicode tables into the Worker (half a megabyte of wasm) for the same grammar.

use async_trait::async_trait;
use serde_json::{json, Value};

use super::{string_arg, Tool, ToolError};

/// Longest expression accepted.
const MAX_EXPRESSION_CHARS: usize = 1_000;
/// Deepest nesting of parentheses and unary operators accepted.
const MAX_DEPTH: usize = 64;

/// Evaluates arithmetic expressions (`+ - * / % ^`, parentheses, `sqrt`, `sin`, `ln`, `pi`, …) in f64.
pub struct Calculator;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Op(char),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let sign = usize::from(matches!(chars.get(i + 1), Some('+' | '-')));
                if chars.get(i + 1 + sign).is_some_and(char::is_ascii_digit) {
                    i += 1 + sign;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let literal: String = chars[start..i].iter().filter(|c| **c != '_').collect();
            tokens.push(Token::Number(literal.parse().map_err(|_| format!("`{literal}` is not a number"))?));
        } else if c.is_alphabetic() {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            tokens.push(Token::Name(chars[start..i].iter().collect::<String>().to_lowercase()));
        } else if "+-*/%^()×÷".contains(c) {
            tokens.push(Token::Op(match c {
                '×' => '*',
                '÷' => '/',
                other => other,
            }));
            i += 1;
        } else {
            return Err(format!("unexpected character `{c}`"));
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn binding_power(op: char) -> Option<(u8, u8)> {
        Some(match op {
            '+' | '-' => (1, 2),
            '*' | '/' | '%' => (3, 4),
            '^' => (6, 5),
            _ => return None,
        })
    }

    /// An expression whose operators bind tighter than `min_power`.
    fn expression(&mut self, min_power: u8) -> Result<f64, String> {
        let mut left = self.operand()?;
        while let Some(Token::Op(op)) = self.peek().cloned() {
            let Some((left_power, right_power)) = Self::binding_power(op) else { break };
            if left_power < min_power {
                break;
            }
            self.next();
            let right = self.expression(right_power)?;
            left = match op {
                '+' => left + right,
                '-' => left - right,
                '*' => left * right,
                '/' => left / right,
                '%' => left % right,
                _ => left.powf(right),
            };
        }
        Ok(left)
    }

    fn operand(&mut self) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err("the expression is nested too deeply".into());
        }
        let value = match self.next() {
            Some(Token::Number(n)) => n,
            Some(Token::Op('-')) => -self.expression(5)?,
            Some(Token::Op('+')) => self.expression(5)?,
            Some(Token::Op('(')) => {
                let inner = self.expression(0)?;
                match self.next() {
                    Some(Token::Op(')')) => inner,
                    _ => return Err("a `(` is not closed".into()),
                }
            }
            Some(Token::Name(name)) => match name.as_str() {
                "pi" => std::f64::consts::PI,
                "e" => std::f64::consts::E,
                function => {
                    let argument = match self.peek() {
                        Some(Token::Op('(')) => self.operand()?,
                        _ => return Err(format!("unknown name `{function}`")),
                    };
                    apply(function, argument)?
                }
            },
            Some(Token::Op(op)) => return Err(format!("unexpected `{op}`")),
            None => return Err("the expression ends too early".into()),
        };
        self.depth -= 1;
        Ok(value)
    }
}

fn apply(function: &str, x: f64) -> Result<f64, String> {
    Ok(match function {
        "sqrt" => x.sqrt(),
        "cbrt" => x.cbrt(),
        "exp" => x.exp(),
        "ln" => x.ln(),
        "log" | "log10" => x.log10(),
        "log2" => x.log2(),
        "sin" => x.sin(),
        "cos" => x.cos(),
        "tan" => x.tan(),
        "asin" => x.asin(),
        "acos" => x.acos(),
        "atan" => x.atan(),
        "abs" => x.abs(),
        "floor" => x.floor(),
        "ceil" => x.ceil(),
        "round" => x.round(),
        other => return Err(format!("unknown function `{other}`")),
    })
}

/// Evaluates `text`.
fn evaluate(text: &str) -> Result<f64, String> {
    let mut parser = Parser { tokens: tokenize(text)?, position: 0, depth: 0 };
    let value = parser.expression(0)?;
    match parser.next() {
        None => Ok(value),
        Some(token) => Err(format!("unexpected {token:?} after a complete expression")),
    }
}

#[async_trait(?Send)]
impl Tool for Calculator {
    fn name(&self) -> &'static str {
        "calculator"
    }

    fn description(&self) -> &'static str {
        "Evaluate an arithmetic expression exactly, e.g. \"(17+25)*3\" or \"sqrt(2)^3/pi\". Supports + - * / % ^, \
         parentheses, sqrt, cbrt, exp, ln, log10, log2, sin, cos, tan, asin, acos, atan, abs, floor, ceil, round, pi \
         and e. Use it instead of doing math in your head."
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
        let value = evaluate(expression).map_err(|e| ToolError::new(format!("cannot evaluate `{expression}`: {e}")))?;
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
    fn arithmetic_follows_precedence_and_associativity() {
        for (expression, expected) in [
            ("(17+25)*3", "126"),
            ("7/2", "3.5"),
            ("2^10", "1024"),
            ("2^3^2", "512"),
            ("-2^2", "-4"),
            ("10-4-3", "3"),
            ("2*-3", "-6"),
            ("17 % 5", "2"),
            ("1.5e3 + 1_000", "2500"),
            ("sqrt(2)", "1.414213562373"),
            ("2 × 3 ÷ 4", "1.5"),
            ("round(pi*100)/100", "3.14"),
            ("ln(e)", "1"),
        ] {
            assert_eq!(calc(expression).unwrap(), expected, "{expression}");
        }
    }

    #[test]
    fn bad_expressions_are_tool_errors() {
        for (expression, message) in [
            ("2 +* ", "unexpected"),
            ("(1+2", "not closed"),
            ("1 2", "after a complete expression"),
            ("foo(2)", "unknown function"),
            ("x + 1", "unknown name"),
            ("2 $ 3", "unexpected character"),
            ("1..2", "not a number"),
            ("1/0", "finite"),
            ("", "1 to"),
        ] {
            let err = calc(expression).unwrap_err().0;
            assert!(err.contains(message), "{expression}: {err}");
        }
        assert!(block_on(Calculator.execute(json!({}))).unwrap_err().0.contains("expression"));
        let deep = format!("{}1{}", "(".repeat(100), ")".repeat(100));
        assert!(calc(&deep).unwrap_err().0.contains("nested too deeply"));
    }
}
