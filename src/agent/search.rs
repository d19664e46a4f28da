//! The `search` tool: a regular expression over the work tree's files, with optional context.
//!
//! Invariants: files are listed by the gitignore-aware walker and each one is read through the
//! capability (a file swapped for a symlink is not followed out); matches, context and the output
//! size are capped, and a capped result says so at a line boundary instead of being cut mid-line.

use serde_json::Value;

use super::fs::ToolError;
use super::input::{opt_str, opt_u64, str_arg};
use super::tools::Toolbox;
use crate::event::Event;

const SEARCH_CAP: usize = 200;
const SEARCH_FILE_MAX: u64 = 2 * 1024 * 1024;
const MAX_CONTEXT: usize = 10;
const SHOWN_CHARS: usize = 300;

pub(super) fn run(tools: &Toolbox, input: &Value) -> Result<(String, Event), ToolError> {
    let pattern = str_arg(input, "pattern")?;
    let re = regex::RegexBuilder::new(pattern)
        .size_limit(10 << 20)
        .build()
        .map_err(|e| ToolError(format!("invalid regular expression: {e}")))?;
    let path = opt_str(input, "path");
    let glob = opt_str(input, "glob");
    let context = opt_u64(input, "context")
        .unwrap_or(0)
        .min(MAX_CONTEXT as u64) as usize;
    let single_file = match path {
        Some(p) => {
            let rel = tools.fs.relative(p)?;
            tools
                .fs
                .dir()
                .metadata(&rel)
                .map(|m| m.is_file())
                .unwrap_or(false)
        }
        None => false,
    };
    let files: Vec<String> = if single_file {
        vec![path.unwrap_or_default().to_string()]
    } else {
        let (_, walk) = tools.walker(path, glob)?;
        walk.flatten()
            .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
            .filter(|e| {
                e.metadata()
                    .map(|m| m.len() <= SEARCH_FILE_MAX)
                    .unwrap_or(false)
            })
            .filter_map(|e| tools.relative_display(e.path()))
            .collect()
    };
    let budget = tools.output_cap_chars.saturating_sub(200).max(1);
    let mut out = String::new();
    let mut used = 0usize;
    let mut matches = 0usize;
    let mut shown = 0usize;
    let mut full = false;
    for file in &files {
        let Ok(text) = tools.fs.read_text(file) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let hits: Vec<usize> = (0..lines.len())
            .filter(|i| re.is_match(lines[*i]))
            .collect();
        matches += hits.len();
        // The next line not yet printed for this file: overlapping contexts are merged.
        let mut next = 0usize;
        for &hit in &hits {
            if full || shown == SEARCH_CAP {
                full = true;
                break;
            }
            let from = hit.saturating_sub(context).max(next);
            let to = (hit + context + 1).min(lines.len());
            let mut group = String::new();
            let contiguous = next > 0 && from == next;
            if context > 0 && !out.is_empty() && !contiguous && from < to {
                group.push_str("--\n");
            }
            for (i, line) in lines.iter().enumerate().take(to).skip(from) {
                let text: String = line.chars().take(SHOWN_CHARS).collect();
                let sep = if re.is_match(line) { ':' } else { '-' };
                group.push_str(&format!("{file}{sep}{}{sep} {text}\n", i + 1));
            }
            let chars = group.chars().count();
            if used + chars > budget {
                full = true;
                break;
            }
            used += chars;
            out.push_str(&group);
            shown += 1;
            next = next.max(to);
        }
    }
    if full && matches > shown {
        out.push_str(&format!(
            "[… {} more matches not shown; narrow the pattern or path]\n",
            matches - shown
        ));
    }
    if matches == 0 {
        out = format!("no matches for /{pattern}/ in {} files", files.len());
    }
    Ok((
        out,
        Event::ToolSearch {
            run_id: tools.run_id.clone(),
            pattern: pattern.to_string(),
            path: path.map(str::to_string),
            matches: matches as u64,
        },
    ))
}
