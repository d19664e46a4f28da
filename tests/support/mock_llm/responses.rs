//! OpenAI Responses API turns for the local model server: a [`Turn`] as the real event sequence
//! (`response.created` … `response.completed`), and a route that answers each turn of a
//! conversation with a given body (a recorded fixture or a built stream), in either API's shape.

use serde_json::{Value, json};

use super::{Handler, Model, Reply, Request, Turn, Usage};

/// Which turn a Responses request asks for: the runs of model output (reasoning, assistant
/// messages, function calls) its `input` already holds.
pub fn responses_turn_of(body: &Value) -> usize {
    let Some(items) = body["input"].as_array() else {
        return 0;
    };
    let mut turns = 0;
    let mut in_output = false;
    for item in items {
        let output = matches!(item["type"].as_str(), Some("reasoning" | "function_call"))
            || item["role"] == "assistant";
        if output && !in_output {
            turns += 1;
        }
        in_output = output;
    }
    turns
}

/// The turn a request of either shape asks for.
pub fn turn_of_any(body: &Value) -> usize {
    if body.get("input").is_some() {
        responses_turn_of(body)
    } else {
        Model::turn_of(body)
    }
}

fn event(name: &str, seq: &mut u64, mut data: Value) -> Vec<u8> {
    data["type"] = json!(name);
    data["sequence_number"] = json!(*seq);
    *seq += 1;
    format!("event: {name}\ndata: {data}\n\n").into_bytes()
}

/// A Responses stream for `turn`: an optional reasoning item (with this encrypted content), a
/// message streamed in deltas, function calls with their arguments in deltas, and the usage.
pub fn responses_stream(
    turn: &Turn,
    number: usize,
    usage: Usage,
    encrypted_reasoning: Option<&str>,
) -> Vec<Vec<u8>> {
    let mut seq = 0;
    let id = format!("resp_{number}");
    let mut out = vec![event(
        "response.created",
        &mut seq,
        json!({"response": {"id": id, "object": "response", "status": "in_progress", "output": []}}),
    )];
    let mut output = vec![];
    if let Some(enc) = encrypted_reasoning {
        let item = json!({"id": format!("rs_{number}"), "type": "reasoning", "summary": [],
            "encrypted_content": enc});
        let i = output.len();
        out.push(event("response.output_item.added", &mut seq,
            json!({"output_index": i, "item": {"id": format!("rs_{number}"), "type": "reasoning", "summary": []}})));
        out.push(event(
            "response.output_item.done",
            &mut seq,
            json!({"output_index": i, "item": item}),
        ));
        output.push(item);
    }
    if !turn.text.is_empty() {
        let i = output.len();
        let mid = format!("msg_{number}");
        out.push(event("response.output_item.added", &mut seq, json!({"output_index": i,
            "item": {"id": mid, "type": "message", "status": "in_progress", "role": "assistant", "content": []}})));
        let chars: Vec<char> = turn.text.chars().collect();
        for piece in chars.chunks(12) {
            let d: String = piece.iter().collect();
            out.push(event(
                "response.output_text.delta",
                &mut seq,
                json!({"item_id": mid, "output_index": i, "content_index": 0, "delta": d}),
            ));
        }
        let item = json!({"id": mid, "type": "message", "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": turn.text, "annotations": []}]});
        out.push(event(
            "response.output_item.done",
            &mut seq,
            json!({"output_index": i, "item": item}),
        ));
        output.push(item);
    }
    for (k, (name, input)) in turn.calls.iter().enumerate() {
        let i = output.len();
        let fid = format!("fc_{number}_{k}");
        let call_id = format!("call_{number}_{k}");
        out.push(event(
            "response.output_item.added",
            &mut seq,
            json!({"output_index": i,
            "item": {"id": fid, "type": "function_call", "status": "in_progress", "arguments": "",
                     "call_id": call_id, "name": name}}),
        ));
        let args = input.to_string();
        out.push(event(
            "response.function_call_arguments.delta",
            &mut seq,
            json!({"item_id": fid, "output_index": i, "delta": args}),
        ));
        out.push(event(
            "response.function_call_arguments.done",
            &mut seq,
            json!({"item_id": fid, "output_index": i, "arguments": args}),
        ));
        let item = json!({"id": fid, "type": "function_call", "status": "completed",
            "arguments": args, "call_id": call_id, "name": name});
        out.push(event(
            "response.output_item.done",
            &mut seq,
            json!({"output_index": i, "item": item}),
        ));
        output.push(item);
    }
    out.push(event("response.completed", &mut seq, json!({"response": {"id": id, "object": "response",
        "status": "completed", "output": output,
        "usage": {"input_tokens": usage.input + usage.cache_read,
                  "input_tokens_details": {"cached_tokens": usage.cache_read},
                  "output_tokens": usage.output, "total_tokens": usage.input + usage.cache_read + usage.output}}})));
    out
}

/// A body split into its events, one chunk each.
pub fn per_event(body: &[u8]) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(body);
    text.split_inclusive("\n\n")
        .map(|e| e.as_bytes().to_vec())
        .collect()
}

/// A route answering turn `n` of a conversation (either API's shape) with `bodies[n]`, one event
/// per chunk; a turn past the end is a 500.
pub fn turns_route(bodies: Vec<Vec<u8>>) -> Handler {
    std::sync::Arc::new(move |req: &Request| {
        let n = turn_of_any(&req.body);
        match bodies.get(n) {
            Some(body) => Reply::sse(per_event(body)),
            None => Reply::Status {
                status: 500,
                headers: vec![],
                body: format!(r#"{{"error":{{"message":"the mock has no turn {n}"}}}}"#),
            },
        }
    })
}
