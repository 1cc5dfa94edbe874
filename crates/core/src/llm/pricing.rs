//! Prices of known models, to report the cost of a turn. Unknown models report tokens only.

use super::Usage;

/// USD per million input and output tokens, by model-name prefix (the longest matching prefix wins).
const PRICES: &[(&str, f64, f64)] = &[
    ("gpt-4o-mini", 0.15, 0.60),
    ("gpt-4o", 2.50, 10.00),
    ("gpt-4.1-nano", 0.10, 0.40),
    ("gpt-4.1-mini", 0.40, 1.60),
    ("gpt-4.1", 2.00, 8.00),
    ("gpt-5-nano", 0.05, 0.40),
    ("gpt-5-mini", 0.25, 2.00),
    ("gpt-5", 1.25, 10.00),
    ("o3-mini", 1.10, 4.40),
    ("o4-mini", 1.10, 4.40),
    ("claude-3-haiku", 0.25, 1.25),
    ("claude-3-5-haiku", 0.80, 4.00),
    ("claude-haiku-4-5", 1.00, 5.00),
    ("claude-3-5-sonnet", 3.00, 15.00),
    ("claude-3-7-sonnet", 3.00, 15.00),
    ("claude-sonnet-4", 3.00, 15.00),
    ("claude-opus-4", 15.00, 75.00),
    ("gemini-2.0-flash-lite", 0.075, 0.30),
    ("gemini-2.0-flash", 0.10, 0.40),
    ("gemini-2.5-flash-lite", 0.10, 0.40),
    ("gemini-2.5-flash", 0.30, 2.50),
    ("gemini-2.5-pro", 1.25, 10.00),
    ("deepseek-chat", 0.27, 1.10),
    ("deepseek-reasoner", 0.55, 2.19),
];

/// The cost in USD of `usage` on `model`, or `None` when the model's price is unknown.
pub fn cost_usd(model: &str, usage: Usage) -> Option<f64> {
    let (_, input, output) =
        PRICES.iter().filter(|(prefix, _, _)| model.starts_with(prefix)).max_by_key(|(p, _, _)| p.len())?;
    Some((usage.input_tokens as f64 * input + usage.output_tokens as f64 * output) / 1_000_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_prefix_prices_the_model() {
        let usage = Usage { input_tokens: 1_000_000, output_tokens: 1_000_000 };
        assert_eq!(cost_usd("gpt-4o-mini-2024-07-18", usage), Some(0.75));
        assert_eq!(cost_usd("gpt-4o", usage), Some(12.5));
    }

    #[test]
    fn unknown_models_have_no_price() {
        assert_eq!(cost_usd("my-local-llama", Usage { input_tokens: 5, output_tokens: 5 }), None);
    }
}
