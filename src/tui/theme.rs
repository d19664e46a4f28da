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

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.c(Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD))
        } else {
            self.c(Style::default().fg(Color::DarkGray))
        }
    }
    pub fn title(&self, focused: bool) -> Style {
        if focused {
            self.c(Style::default()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD))
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
    pub fn added_emph(&self) -> Style {
        if self.no_color {
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default()
                .fg(Color::LightGreen)
                .bg(Color::Indexed(28))
                .add_modifier(Modifier::BOLD)
        }
    }
    pub fn removed_emph(&self) -> Style {
        if self.no_color {
            Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::default()
                .fg(Color::LightRed)
                .bg(Color::Indexed(88))
                .add_modifier(Modifier::BOLD)
        }
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
    pub fn cursor(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn badge(&self) -> Style {
        self.c(Style::default().fg(Color::Black).bg(Color::Cyan))
            .add_modifier(
                Modifier::BOLD
                    | if self.no_color {
                        Modifier::REVERSED
                    } else {
                        Modifier::empty()
                    },
            )
    }
    pub fn badge_for(&self, failed: bool, done: bool) -> Style {
        if failed {
            self.c(Style::default().fg(Color::White).bg(Color::Red))
                .add_modifier(
                    Modifier::BOLD
                        | if self.no_color {
                            Modifier::REVERSED
                        } else {
                            Modifier::empty()
                        },
                )
        } else if done {
            self.c(Style::default().fg(Color::Black).bg(Color::Green))
                .add_modifier(
                    Modifier::BOLD
                        | if self.no_color {
                            Modifier::REVERSED
                        } else {
                            Modifier::empty()
                        },
                )
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
