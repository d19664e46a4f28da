//! Where each pane goes for a terminal size: shared by `view` (drawing) and `update` (page sizes,
//! mouse hit-testing) so both always agree.
//!
//! Invariants: pure function of the size and file count; below [`MIN_W`]×[`MIN_H`] nothing but a
//! "too small" message is drawn.

use ratatui::layout::Rect;

pub const MIN_W: u16 = 60;
pub const MIN_H: u16 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Panes {
    pub header: Rect,
    pub status: Rect,
    pub repo: Rect,
    pub base: Rect,
    pub prompt: Rect,
    pub steps: Rect,
    /// The whole right pane, border included.
    pub diff: Rect,
    /// Inside the diff border: the file list.
    pub files: Rect,
    /// Inside the diff border: the unified diff rows.
    pub body: Rect,
}

pub fn too_small(w: u16, h: u16) -> bool {
    w < MIN_W || h < MIN_H
}

/// Which pane fills the screen between the header and the status line (`z`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zoom {
    Steps,
    Diff,
}

/// The model's layout: [`panes`], or with `zoom` one pane over the whole middle of the screen
/// and the others empty (zero-sized, so nothing draws them and no click lands on them).
pub fn panes_zoomed(area: Rect, file_count: usize, zoom: Option<Zoom>) -> Panes {
    let p = panes(area, file_count);
    let Some(z) = zoom else {
        return p;
    };
    let middle = Rect::new(
        area.x,
        p.header.bottom(),
        area.width,
        area.height.saturating_sub(2),
    );
    let none = Rect::new(area.x, middle.y, 0, 0);
    match z {
        Zoom::Steps => Panes {
            repo: none,
            base: none,
            prompt: none,
            steps: middle,
            diff: none,
            files: none,
            body: none,
            ..p
        },
        Zoom::Diff => {
            let (files, body) = diff_split(middle, file_count);
            Panes {
                repo: none,
                base: none,
                prompt: none,
                steps: none,
                diff: middle,
                files,
                body,
                ..p
            }
        }
    }
}

/// Inside the diff pane's border: the file list (up to a quarter of it), a separator row, and
/// the body.
fn diff_split(diff: Rect, file_count: usize) -> (Rect, Rect) {
    let inner = Rect::new(
        diff.x + 1,
        diff.y + 1,
        diff.width.saturating_sub(2),
        diff.height.saturating_sub(2),
    );
    let list_h = if file_count == 0 {
        0
    } else {
        (file_count as u16).min((inner.height / 4).max(1))
    };
    let files = Rect::new(inner.x, inner.y, inner.width, list_h);
    // One separator row between the list and the body.
    let sep = u16::from(list_h > 0);
    let body = Rect::new(
        inner.x,
        inner.y + list_h + sep,
        inner.width,
        inner.height.saturating_sub(list_h + sep),
    );
    (files, body)
}

pub fn panes(area: Rect, file_count: usize) -> Panes {
    let header = Rect::new(area.x, area.y, area.width, 1);
    let status = Rect::new(area.x, area.bottom().saturating_sub(1), area.width, 1);
    let body_h = area.height.saturating_sub(2);
    let y = area.y + 1;
    let left_w = (area.width * 38 / 100).clamp(28, 64).min(area.width);
    let right_w = area.width - left_w;
    let prompt_h = match body_h {
        h if h >= 40 => 9,
        h if h >= 28 => 7,
        _ => 5,
    };
    let repo = Rect::new(area.x, y, left_w, 3);
    let base = Rect::new(area.x, y + 3, left_w, 3);
    let prompt = Rect::new(area.x, y + 6, left_w, prompt_h);
    let steps_y = y + 6 + prompt_h;
    let steps = Rect::new(
        area.x,
        steps_y,
        left_w,
        (y + body_h).saturating_sub(steps_y),
    );
    let diff = Rect::new(area.x + left_w, y, right_w, body_h);
    let (files, body) = diff_split(diff, file_count);
    Panes {
        header,
        status,
        repo,
        base,
        prompt,
        steps,
        diff,
        files,
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_80x24_without_overlap() {
        let p = panes(Rect::new(0, 0, 80, 24), 3);
        assert_eq!(p.steps.bottom(), 23);
        assert!(p.steps.height >= 5, "{p:?}");
        assert_eq!(p.diff.right(), 80);
        assert_eq!(p.files.height, 3);
        assert!(p.body.height >= 10);
        assert!(too_small(59, 24) && too_small(80, 15) && !too_small(80, 24));
    }
}
