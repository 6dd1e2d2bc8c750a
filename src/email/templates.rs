//! Email templates, compiled into the binary. Each email `NAME` has three templates:
//! `NAME.subject.txt`, `NAME.txt` (the plain-text part) and `NAME.html` (the HTML part,
//! which extends `layout.html`). minijinja escapes every value in `.html` templates, so
//! text from customers or admins cannot inject markup; `.txt` templates are not escaped.

use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, Value};

use super::EmailError;

/// Every template, by name.
const SOURCES: &[(&str, &str)] = &[
    ("layout.html", include_str!("templates/layout.html")),
    (
        "invite.subject.txt",
        include_str!("templates/invite.subject.txt"),
    ),
    ("invite.txt", include_str!("templates/invite.txt")),
    ("invite.html", include_str!("templates/invite.html")),
    (
        "password_reset.subject.txt",
        include_str!("templates/password_reset.subject.txt"),
    ),
    (
        "password_reset.txt",
        include_str!("templates/password_reset.txt"),
    ),
    (
        "password_reset.html",
        include_str!("templates/password_reset.html"),
    ),
    (
        "lead.subject.txt",
        include_str!("templates/lead.subject.txt"),
    ),
    ("lead.txt", include_str!("templates/lead.txt")),
    ("lead.html", include_str!("templates/lead.html")),
];

/// A rendered email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Compiles every template (a syntax error fails here, at startup).
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        // Keep the final newline of text bodies.
        env.set_syntax(
            SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()?,
        );
        for (name, source) in SOURCES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// Renders the subject, text and HTML of email `name`.
    pub fn render(&self, name: &str, context: &Value) -> Result<Rendered, EmailError> {
        let one = |suffix: &str| {
            let template = format!("{name}.{suffix}");
            self.env
                .get_template(&template)
                .and_then(|t| t.render(context))
                .map_err(|source| EmailError::Template {
                    name: template,
                    source,
                })
        };
        let subject = one("subject.txt")?
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Ok(Rendered {
            subject,
            text: one("txt")?,
            html: one("html")?,
        })
    }
}

/// A duration for people: `72 hours`, `1 hour`, `30 minutes`.
pub fn human_duration(secs: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if secs >= 3600 && secs % 3600 == 0 {
        plural(secs / 3600, "hour")
    } else if secs >= 60 {
        plural(secs / 60, "minute")
    } else {
        plural(secs, "second")
    }
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::*;

    #[test]
    fn every_email_renders_and_html_is_escaped_but_text_is_not() {
        let t = Templates::new().expect("templates compile");
        let lead = t
            .render(
                "lead",
                &context! {
                    dealership => "Alpha <Autos>",
                    summary => "Wants a <b>test drive</b> & a quote",
                    session_id => "s-1",
                    session_url => "https://adam.test/admin/#/sessions/s-1",
                    contact => context! { name => "Ana \"A\" O'Neil", phone => "+1 555 0100" },
                    created_at => "2026-12-05T10:00:00Z",
                },
            )
            .expect("lead renders");
        assert!(
            lead.subject.contains("Ana \"A\" O'Neil"),
            "{}",
            lead.subject
        );
        assert!(lead.text.contains("Wants a <b>test drive</b> & a quote"));
        assert!(
            lead.html
                .contains("Wants a &lt;b&gt;test drive&lt;&#x2f;b&gt; &amp; a quote"),
            "{}",
            lead.html
        );
        assert!(!lead.html.contains("<b>test drive"));
        assert!(lead.html.contains("Alpha &lt;Autos&gt;"));

        for name in ["invite", "password_reset"] {
            let mail = t
                .render(
                    name,
                    &context! {
                        display_name => "Ana",
                        dealership => "Alpha Autos",
                        invited_by => "Bo",
                        link => "https://adam.test/admin/#/set-password?token=abc",
                        expires_in => "1 hour",
                    },
                )
                .expect("renders");
            assert!(!mail.subject.is_empty() && !mail.subject.contains('\n'));
            for body in [&mail.text, &mail.html] {
                assert!(body.contains("set-password?token=abc"), "{name}: {body}");
                assert!(body.contains("1 hour"), "{name}: {body}");
            }
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(72 * 3600), "72 hours");
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(5400), "90 minutes");
        assert_eq!(human_duration(60), "1 minute");
        assert_eq!(human_duration(30), "30 seconds");
    }
}
