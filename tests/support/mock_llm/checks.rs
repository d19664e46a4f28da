//! Assertions on what providers send, and a model of Anthropic's prompt cache.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};

use serde_json::Value;

/// Every `tool_use` is answered by a `tool_result` in the next (user) message and every result
/// answers a `tool_use` of the message before; roles alternate, starting with the user.
pub fn check_anthropic_pairing(body: &Value) -> Result<(), String> {
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let mut expected: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if role != want {
            return Err(format!("message {i} has role {role}, expected {want}"));
        }
        let blocks = m["content"].as_array().ok_or("content is not a list")?;
        let kinds: Vec<&str> = blocks.iter().filter_map(|b| b["type"].as_str()).collect();
        if role == "user" {
            let results: Vec<String> = blocks
                .iter()
                .filter(|b| b["type"] == "tool_result")
                .map(|b| b["tool_use_id"].as_str().unwrap_or("").to_string())
                .collect();
            if results != expected {
                return Err(format!(
                    "message {i}: results {results:?}, calls {expected:?}"
                ));
            }
            let first_other = kinds.iter().position(|k| *k != "tool_result");
            if let Some(p) = first_other
                && kinds[p..].contains(&"tool_result")
            {
                return Err(format!("message {i}: tool_result after other content"));
            }
            expected.clear();
        } else {
            expected = blocks
                .iter()
                .filter(|b| b["type"] == "tool_use")
                .map(|b| b["id"].as_str().unwrap_or("").to_string())
                .collect();
        }
    }
    Ok(())
}

/// Each assistant message's `tool_calls` are answered, in order, by `tool` messages right after it.
pub fn check_openai_pairing(body: &Value) -> Result<(), String> {
    let messages = body["messages"].as_array().ok_or("no messages")?;
    let mut i = 0;
    while i < messages.len() {
        let m = &messages[i];
        if m["role"] == "tool" {
            return Err(format!("message {i}: a tool result without a call"));
        }
        if let Some(calls) = m["tool_calls"].as_array() {
            for (k, c) in calls.iter().enumerate() {
                let r = messages.get(i + 1 + k).ok_or("missing tool result")?;
                if r["role"] != "tool" || r["tool_call_id"] != c["id"] {
                    return Err(format!(
                        "message {}: expected the result of {}",
                        i + 1 + k,
                        c["id"]
                    ));
                }
                serde_json::from_str::<Value>(c["function"]["arguments"].as_str().unwrap_or(""))
                    .map_err(|e| format!("arguments are not JSON: {e}"))?;
            }
            i += calls.len();
        }
        i += 1;
    }
    Ok(())
}

/// Where `cache_control` breakpoints sit: `tools[i]`, `system[i]`, `messages[i].content[j]`.
pub fn cache_breakpoints(body: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
        if t.get("cache_control").is_some() {
            out.push(format!("tools[{i}]"));
        }
    }
    for (i, s) in body["system"].as_array().into_iter().flatten().enumerate() {
        if s.get("cache_control").is_some() {
            out.push(format!("system[{i}]"));
        }
    }
    for (i, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            if b.get("cache_control").is_some() {
                out.push(format!("messages[{i}].content[{j}]"));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Prompt-cache accounting

/// One request's prompt bytes: total, read from cache, written to cache, and after the last
/// breakpoint (never cached).
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheRow {
    pub total: u64,
    pub cached: u64,
    pub written: u64,
    pub uncached_tail: u64,
}

/// Models Anthropic's prompt cache on the bytes of the request: the prompt is the sequence tools,
/// system blocks, message blocks; a breakpoint writes the prefix ending there (if at least
/// `min_prefix` bytes); a later request reads the longest prefix, ending at one of its breakpoints
/// or up to 20 blocks before one, that an earlier request wrote.
#[derive(Debug, Default)]
pub struct CacheLedger {
    written: HashSet<u64>,
    pub rows: Vec<CacheRow>,
    /// 1024 tokens ≈ 4096 bytes for Sonnet-class models.
    pub min_prefix: u64,
}

impl CacheLedger {
    pub fn account(&mut self, body: &Value) -> CacheRow {
        let min_prefix = if self.min_prefix == 0 {
            4096
        } else {
            self.min_prefix
        };
        let mut segments: Vec<(String, bool)> = Vec::new();
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("cache_control");
            }
            v
        };
        for t in body["tools"].as_array().into_iter().flatten() {
            segments.push((strip(t).to_string(), t.get("cache_control").is_some()));
        }
        for s in body["system"].as_array().into_iter().flatten() {
            segments.push((strip(s).to_string(), s.get("cache_control").is_some()));
        }
        for m in body["messages"].as_array().into_iter().flatten() {
            for b in m["content"].as_array().into_iter().flatten() {
                let seg = format!("{}:{}", m["role"], strip(b));
                segments.push((seg, b.get("cache_control").is_some()));
            }
        }
        let mut hashes = Vec::new();
        let mut sizes = Vec::new();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let mut size = 0u64;
        for (s, _) in &segments {
            s.hash(&mut hasher);
            size += s.len() as u64;
            hashes.push(hasher.finish());
            sizes.push(size);
        }
        let breakpoints: Vec<usize> = segments
            .iter()
            .enumerate()
            .filter(|(_, (_, bp))| *bp)
            .map(|(i, _)| i)
            .collect();
        let mut cached = 0;
        for &bp in &breakpoints {
            for q in (bp.saturating_sub(20)..=bp).rev() {
                if self.written.contains(&hashes[q]) {
                    cached = cached.max(sizes[q]);
                    break;
                }
            }
        }
        let last_bp = breakpoints.last().map(|&b| sizes[b]).unwrap_or(0);
        for &bp in &breakpoints {
            if sizes[bp] >= min_prefix {
                self.written.insert(hashes[bp]);
            }
        }
        let total = size;
        let row = CacheRow {
            total,
            cached,
            written: if last_bp >= min_prefix {
                last_bp.saturating_sub(cached)
            } else {
                0
            },
            uncached_tail: total - cached.max(if last_bp >= min_prefix { last_bp } else { 0 }),
        };
        self.rows.push(row);
        row
    }
}

// ---------------------------------------------------------------------------------------------
