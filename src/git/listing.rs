//! git's machine-readable listings of a diff (`--raw -z`, `--numstat -z`), read as bytes: paths
//! need not be UTF-8.

use crate::event::FileStatus;

/// One file of `git diff --raw -z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub status: u8,
    pub path: Vec<u8>,
    pub old_path: Option<Vec<u8>>,
}

/// Parses `git diff --raw -z`: `:modes ids STATUS\0path\0` (two paths for renames and copies).
pub fn parse_raw(raw: &[u8]) -> Vec<RawEntry> {
    let mut out = Vec::new();
    let mut parts = raw.split(|b| *b == 0);
    while let Some(meta) = parts.next() {
        if meta.is_empty() {
            continue;
        }
        let status = meta
            .rsplit(|b| *b == b' ')
            .next()
            .and_then(|s| s.first().copied())
            .unwrap_or(b'M');
        let first = parts.next().unwrap_or_default().to_vec();
        let entry = if matches!(status, b'R' | b'C') {
            RawEntry {
                status,
                path: parts.next().unwrap_or_default().to_vec(),
                old_path: Some(first),
            }
        } else {
            RawEntry {
                status,
                path: first,
                old_path: None,
            }
        };
        out.push(entry);
    }
    out
}

/// The status a raw listing's letter stands for (`M` and anything unknown: modified).
pub fn status_of(code: u8) -> FileStatus {
    match code {
        b'A' => FileStatus::Added,
        b'D' => FileStatus::Deleted,
        b'R' => FileStatus::Renamed,
        b'C' => FileStatus::Copied,
        b'T' => FileStatus::TypeChanged,
        _ => FileStatus::Modified,
    }
}

/// Insertions and deletions; `None` for binary files.
pub type LineCounts = (Option<u64>, Option<u64>);

/// Parses `git diff --numstat -z` into (new path, (insertions, deletions)); binary files have
/// `None`.
pub fn parse_numstat(raw: &[u8]) -> Vec<(Vec<u8>, LineCounts)> {
    let mut out = Vec::new();
    let mut parts = raw.split(|b| *b == 0);
    let num = |b: Option<&[u8]>| {
        b.and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
    };
    while let Some(rec) = parts.next() {
        if rec.is_empty() {
            continue;
        }
        let mut fields = rec.splitn(3, |b| *b == b'\t');
        let ins = num(fields.next());
        let del = num(fields.next());
        let path = match fields.next() {
            // A rename: the path field is empty and the old and new paths follow.
            Some([]) | None => {
                let _old = parts.next();
                parts.next().unwrap_or_default().to_vec()
            }
            Some(p) => p.to_vec(),
        };
        out.push((path, (ins, del)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_listing_with_rename() {
        let raw =
            b":100644 100644 aaaa bbbb M\0a.rs\0:100644 100644 cccc cccc R100\0old.rs\0new.rs\0\
                    :000000 100644 0000 dddd A\0n.txt\0";
        let e = parse_raw(raw);
        assert_eq!(e.len(), 3);
        assert_eq!((e[0].status, e[0].path.as_slice()), (b'M', &b"a.rs"[..]));
        assert_eq!(e[1].status, b'R');
        assert_eq!(e[1].path, b"new.rs");
        assert_eq!(e[1].old_path.as_deref(), Some(&b"old.rs"[..]));
        assert_eq!(status_of(e[2].status), FileStatus::Added);
    }

    #[test]
    fn statuses_keep_their_wire_words() {
        use crate::event::FileStat;
        use serde_json::json;
        let words = [
            (b'A', "added"),
            (b'M', "modified"),
            (b'D', "deleted"),
            (b'R', "renamed"),
            (b'C', "copied"),
            (b'T', "type-changed"),
            (b'X', "modified"),
        ];
        for (code, word) in words {
            let s = status_of(code);
            assert_eq!(serde_json::to_value(s).unwrap(), json!(word));
            assert_eq!(s.to_string(), word);
            assert_eq!(
                serde_json::from_value::<FileStatus>(json!(word)).unwrap(),
                s
            );
        }
        // The whole record is the JSON it was when `status` was a string.
        let f = FileStat {
            path: "a b".into(),
            status: FileStatus::Renamed,
            insertions: 1,
            deletions: 2,
            old_path: Some("c".into()),
            ..FileStat::default()
        };
        let wire = r#"{"path":"a b","status":"renamed","insertions":1,"deletions":2,"old_path":"c","warnings":[]}"#;
        assert_eq!(serde_json::to_string(&f).unwrap(), wire);
        assert_eq!(serde_json::from_str::<FileStat>(wire).unwrap(), f);
        assert!(serde_json::from_str::<FileStatus>(r#""unmerged""#).is_err());
    }

    #[test]
    fn numstat_with_binary_and_rename() {
        let n = parse_numstat(b"3\t1\ta.rs\0-\t-\timg.png\x000\t0\t\0old.rs\0new.rs\0");
        assert_eq!(n[0], (b"a.rs".to_vec(), (Some(3), Some(1))));
        assert_eq!(n[1], (b"img.png".to_vec(), (None, None)));
        assert_eq!(n[2], (b"new.rs".to_vec(), (Some(0), Some(0))));
    }
}
