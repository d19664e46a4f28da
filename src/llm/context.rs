//! Keeping a long conversation inside the model's context window.
//!
//! Near the window, the oldest large tool outputs are replaced by a short note (the model can run
//! the tool again) instead of the run failing. Invariants: only tool-result *contents* change — every
//! tool call keeps its result, so the conversation stays valid for every provider; the latest two
//! messages are never touched; the set of elided results only grows, always from the oldest, and
//! jumps by a chunk (down to a low-water mark) so the request prefix stays stable between jumps and
//! prompt caching keeps working. The caller's conversation is never modified: requests get a copy.

use super::{Block, ChatRequest, Message};

/// Results shorter than this are not worth eliding.
const MIN_ELIDE_CHARS: usize = 400;
/// Start eliding above this share of the usable window …
const HIGH_WATER: f64 = 0.80;
/// … and elide down to this share.
const LOW_WATER: f64 = 0.55;

/// A conservative token estimate: code and JSON average well over three bytes per token.
pub fn estimate_tokens(request: &ChatRequest<'_>) -> u64 {
    let tools: usize = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.len() + t.input_schema.to_string().len() + 16)
        .sum();
    let messages: usize = request.messages.iter().map(message_bytes).sum();
    ((request.system.len() + tools + messages) as u64).div_ceil(3)
}

fn message_bytes(m: &Message) -> usize {
    m.blocks
        .iter()
        .map(|b| match b {
            Block::Text(t) => t.len() + 8,
            Block::ToolCall(c) => c.id.len() + c.name.len() + c.input.to_string().len() + 24,
            Block::ToolResult {
                call_id, content, ..
            } => call_id.len() + content.len() + 24,
            Block::Reasoning(r) => reasoning_bytes(r),
        })
        .sum::<usize>()
        + 8
}

/// Reasoning is sent back whole (Anthropic counts past turns' thinking less, but its bytes still
/// travel): counting it keeps the estimate on the safe side.
fn reasoning_bytes(r: &super::Reasoning) -> usize {
    use super::Reasoning;
    match r {
        Reasoning::Thinking {
            thinking,
            signature,
        } => thinking.len() + signature.len() + 48,
        Reasoning::RedactedThinking { data } => data.len() + 40,
        Reasoning::OpenAi {
            summary,
            encrypted_content,
        } => summary.iter().map(String::len).sum::<usize>() + encrypted_content.len() + 48,
    }
}

fn note(chars: usize) -> String {
    format!(
        "[output elided to keep the conversation within the model's context window ({chars} \
         characters); run the tool again if you still need it]"
    )
}

/// Positions (message, block) of the results that may be elided, oldest first.
fn eligible(messages: &[Message]) -> Vec<(usize, usize)> {
    let protected_from = messages.len().saturating_sub(2);
    let mut out = Vec::new();
    for (mi, m) in messages.iter().enumerate().take(protected_from) {
        for (bi, b) in m.blocks.iter().enumerate() {
            if let Block::ToolResult { content, .. } = b
                && content.chars().count() >= MIN_ELIDE_CHARS
            {
                out.push((mi, bi));
            }
        }
    }
    out
}

/// A copy of `messages` with the oldest `count` eligible results elided.
pub fn elide(messages: &[Message], count: usize) -> Vec<Message> {
    let mut out = messages.to_vec();
    for (mi, bi) in eligible(messages).into_iter().take(count) {
        if let Block::ToolResult { content, .. } = &mut out[mi].blocks[bi] {
            *content = note(content.chars().count());
        }
    }
    out
}

/// How many results to elide for this request, given how many are elided already.
/// `window` is the model's context in tokens.
pub fn plan(request: &ChatRequest<'_>, window: u64, already: usize) -> usize {
    let usable = window.saturating_sub(u64::from(request.max_output_tokens)) as f64;
    // Estimate once, then subtract what each elision saves (same bytes/3 rule).
    let full = estimate_tokens(request) as f64;
    let savings: Vec<f64> = eligible(request.messages)
        .into_iter()
        .map(|(mi, bi)| match &request.messages[mi].blocks[bi] {
            Block::ToolResult { content, .. } => {
                let chars = content.chars().count();
                content.len().saturating_sub(note(chars).len()) as f64 / 3.0
            }
            _ => 0.0,
        })
        .collect();
    let estimate = |count: usize| full - savings.iter().take(count).sum::<f64>();
    if estimate(already) <= usable * HIGH_WATER {
        return already;
    }
    let mut count = already;
    while count < savings.len() && estimate(count) > usable * LOW_WATER {
        count += 1;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Role, ToolCall};
    use serde_json::json;

    fn turn(i: usize, output: &str) -> Vec<Message> {
        vec![
            Message {
                role: Role::Assistant,
                blocks: vec![Block::ToolCall(ToolCall {
                    id: format!("c{i}"),
                    name: "bash".into(),
                    input: json!({"command": "cat big"}),
                })],
            },
            Message {
                role: Role::User,
                blocks: vec![Block::ToolResult {
                    call_id: format!("c{i}"),
                    content: output.into(),
                    is_error: false,
                }],
            },
        ]
    }

    fn req(messages: &[Message]) -> ChatRequest<'_> {
        ChatRequest {
            system: "s",
            tools: &[],
            messages,
            max_output_tokens: 1000,
        }
    }

    #[test]
    fn small_conversations_are_untouched() {
        let mut m = vec![Message::user_text("task")];
        m.extend(turn(1, &"x".repeat(1000)));
        assert_eq!(plan(&req(&m), 100_000, 0), 0);
    }

    #[test]
    fn near_the_window_oldest_outputs_go_first_and_pairs_stay() {
        let big = "y".repeat(30_000);
        let mut m = vec![Message::user_text("task")];
        for i in 0..10 {
            m.extend(turn(i, &big));
        }
        // ~100k tokens of outputs against a 64k window
        let window = 64_000;
        let n = plan(&req(&m), window, 0);
        assert!(n > 0 && n < 10, "{n}");
        let elided = elide(&m, n);
        let after = estimate_tokens(&req(&elided));
        assert!(
            after as f64 <= (window - 1000) as f64 * LOW_WATER,
            "{after}"
        );
        // oldest first, the latest result kept, every call still has its result
        match &elided[2].blocks[0] {
            Block::ToolResult {
                content, call_id, ..
            } => {
                assert!(content.contains("elided"));
                assert_eq!(call_id, "c0");
            }
            other => panic!("{other:?}"),
        }
        match &elided.last().unwrap().blocks[0] {
            Block::ToolResult { content, .. } => assert_eq!(content.len(), 30_000),
            other => panic!("{other:?}"),
        }
        assert_eq!(elided.len(), m.len());
        // Stable: one more small turn does not elide more.
        m.extend(turn(99, "ok"));
        assert_eq!(plan(&req(&m), window, n), n);
    }
}
