//! Styles, in one place, with a colorless variant for `NO_COLOR`.
//!
//! Invariants: with `no_color` no style carries a foreground or background color — meaning is then
//! carried by text markers (`[x]`, `+`/`-`, `✓`/`✗`) and by modifiers (bold, dim, reversed,
//! underline) only.

use ratatui::style::{Color, Modifier, Style};

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub no_color: bool,
}

impl Theme {
    fn c(&self, s: Style) -> Style {
        if self.no_color {
            Style {
                fg: None,
                bg: None,
                ..s
            }
        } else {
            s
        }
    }

    /// The bright style of the focused pane's border and title.
    fn focus(&self) -> Style {
        self.c(Style::default()
            .fg(Color::Cyan)
            .add_modifier(Modifier::BOLD))
    }
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.focus()
        } else {
            self.c(Style::default().fg(Color::DarkGray))
        }
    }
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            self.focus()
        } else {
            Style::default()
        }
    }
    pub fn dim(&self) -> Style {
        self.c(Style::default().fg(Color::DarkGray))
            .add_modifier(if self.no_color {
                Modifier::DIM
            } else {
                Modifier::empty()
            })
    }
    pub fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn error(&self) -> Style {
        self.c(Style::default().fg(Color::Red).add_modifier(Modifier::BOLD))
    }
    pub fn ok(&self) -> Style {
        self.c(Style::default().fg(Color::Green))
    }
    pub fn running(&self) -> Style {
        self.c(Style::default().fg(Color::Yellow))
    }
    pub fn model_text(&self) -> Style {
        self.c(Style::default().fg(Color::Magenta))
    }
    pub fn added(&self) -> Style {
        self.c(Style::default().fg(Color::Green))
    }
    pub fn removed(&self) -> Style {
        self.c(Style::default().fg(Color::Red))
    }
    /// Words that changed within a line: bold on a strong background, or bold and underlined
    /// without color.
    fn emph(&self, fg: Color, bg: Color) -> Style {
        if self.no_color {
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default().fg(fg).bg(bg).add_modifier(Modifier::BOLD)
        }
    }
    pub fn added_emph(&self) -> Style {
        self.emph(Color::LightGreen, Color::Indexed(28))
    }
    pub fn removed_emph(&self) -> Style {
        self.emph(Color::LightRed, Color::Indexed(88))
    }
    /// Background of an added line whose text carries syntax colors.
    pub fn added_tint(&self) -> Style {
        self.c(Style::default().bg(Color::Indexed(22)))
    }
    pub fn removed_tint(&self) -> Style {
        self.c(Style::default().bg(Color::Indexed(52)))
    }
    pub fn hunk(&self) -> Style {
        self.c(Style::default().fg(Color::Cyan))
    }
    pub fn file(&self) -> Style {
        self.c(Style::default().fg(Color::White).bg(Color::Indexed(236)))
            .add_modifier(Modifier::BOLD)
    }
    pub fn excluded(&self) -> Style {
        self.c(Style::default().fg(Color::DarkGray))
            .add_modifier(Modifier::DIM | Modifier::CROSSED_OUT)
    }
    /// A search match on screen: reversed, so it shows without color too.
    pub fn search_match(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
    }
    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    /// A bold label on a colored background; reversed instead of colored without color.
    fn label(&self, fg: Color, bg: Color) -> Style {
        let reversed = if self.no_color {
            Modifier::REVERSED
        } else {
            Modifier::empty()
        };
        self.c(Style::default().fg(fg).bg(bg))
            .add_modifier(Modifier::BOLD | reversed)
    }
    /// A character that is not what it seems (a control or invisible character shown as `␛`,
    /// `<U+202E>`) and the file list's `⚠`: black on yellow, reversed without color.
    pub fn warning(&self) -> Style {
        self.label(Color::Black, Color::Yellow)
    }
    pub fn badge(&self) -> Style {
        self.label(Color::Black, Color::Cyan)
    }
    pub fn badge_for(&self, failed: bool, done: bool) -> Style {
        if failed {
            self.label(Color::White, Color::Red)
        } else if done {
            self.label(Color::Black, Color::Green)
        } else {
            self.badge()
        }
    }
    pub fn key(&self) -> Style {
        self.c(Style::default().fg(Color::Cyan))
            .add_modifier(Modifier::BOLD)
    }
    pub fn header(&self) -> Style {
        self.c(Style::default().bg(Color::Indexed(235)))
    }
}
