//! Text for the ear: rewrites an answer sentence into the words a voice should say, so that
//! every synthesizer (espeak-ng, ElevenLabs, …) reads prices, phone numbers, times, dates,
//! years, addresses, units and codes the way a person at the dealership would, and never
//! reads Markdown or table punctuation aloud. Only the text handed to the synthesizer is
//! rewritten; the written answer (`output_text.delta`, the stored transcript) keeps the
//! original. Conventions (documented in docs/protocol.md, "What the voice says"):
//!
//! - `$27,900` → "twenty-seven thousand nine hundred dollars"; `$49.95` → "forty-nine
//!   dollars and ninety-five cents"; `$199/month` → "one hundred ninety-nine dollars a month";
//! - phone numbers digit by digit in their groups ("five five five, one two three, …");
//! - `7:30 am` → "seven thirty a.m."; `9am–6pm` → "nine a.m. to six p.m."; 24-hour
//!   times (`18:00`) are said on the 12-hour clock;
//! - dates: `12/25` is month/day (US), `Dec 25` → "December twenty-fifth", ISO dates too;
//!   `1/2`, `3/4` (a denominator of 2–4, numerator smaller) are fractions;
//! - years 1900–2099 as years ("twenty twenty-four") unless a unit follows; house numbers
//!   before a street name in pairs ("fourteen twenty Harbor Road");
//! - VINs, stock numbers (after "stock", "VIN", "#", "No.") and long letter-digit codes
//!   character by character; e-mail addresses "sam at example dot com"; web addresses
//!   without their scheme, "example dot com slash service".

mod numbers;

pub use numbers::{ONES, TENS, cardinal, ordinal, year};

/// The words a voice should say for `text` (one sentence or a few).
pub fn for_speech(text: &str) -> String {
    let plain = strip_markdown(text);
    let tokens: Vec<&str> = plain.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        i += speak(&tokens, i, &mut out).max(1);
    }
    tidy(&out.join(" "))
}

// ---------------------------------------------------------------------------------------
// Markdown

/// Markdown and table syntax out, the words kept: headings, bullets, emphasis, code
/// marks, links (their text), images (their alt text), table rows (cells joined by
/// commas; separator rows dropped), block quotes and rules.
fn strip_markdown(text: &str) -> String {
    let mut lines = Vec::new();
    for raw in text.lines() {
        let mut line = raw.trim();
        if line.is_empty() || is_rule(line) || is_table_separator(line) {
            continue;
        }
        line = line.trim_start_matches('>').trim_start();
        let heading = line.starts_with('#');
        line = line.trim_start_matches('#').trim_start();
        line = strip_bullet(line);
        let mut l = if line.contains('|') {
            line.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            line.to_owned()
        };
        l = strip_inline(&l);
        if l.trim().is_empty() {
            continue;
        }
        // A heading, bullet or row is its own phrase: end it with a pause.
        if (heading || raw.trim() != line || raw.contains('|'))
            && !l.ends_with(['.', '!', '?', ':', ';', ','])
        {
            l.push('.');
        }
        lines.push(l);
    }
    lines.join(" ")
}

fn is_rule(line: &str) -> bool {
    let c: String = line.chars().filter(|c| !c.is_whitespace()).collect();
    c.len() >= 3 && (c.chars().all(|c| c == '-') || c.chars().all(|c| c == '*'))
        || c.len() >= 3 && c.chars().all(|c| c == '_')
}

fn is_table_separator(line: &str) -> bool {
    line.contains('-')
        && line
            .chars()
            .all(|c| matches!(c, '|' | '-' | ':' | '+') || c.is_whitespace())
}

fn strip_bullet(line: &str) -> &str {
    for marker in ["- ", "* ", "+ ", "• ", "· ", "– "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return rest.trim_start();
        }
    }
    // "1. " / "2) " list numbers.
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if (1..=2).contains(&digits) {
        let rest = &line[digits..];
        if let Some(r) = rest.strip_prefix(". ").or_else(|| rest.strip_prefix(") ")) {
            return r.trim_start();
        }
    }
    line
}

/// Emphasis, code marks, links and images inside a line.
fn strip_inline(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // [text](url) and ![alt](url): the text only.
        if c == '[' || (c == '!' && chars.get(i + 1) == Some(&'[')) {
            let open = if c == '!' { i + 1 } else { i };
            if let Some(close) = (open + 1..chars.len()).find(|&k| chars[k] == ']')
                && chars.get(close + 1) == Some(&'(')
                && let Some(end) = (close + 2..chars.len()).find(|&k| chars[k] == ')')
            {
                out.extend(&chars[open + 1..close]);
                i = end + 1;
                continue;
            }
        }
        match c {
            '*' | '`' | '~' if chars.get(i + 1) == Some(&c) || c != '~' => {}
            // `_` marks emphasis at a word's edge; inside a word (snake_case) it stays.
            '_' => {
                let inside = i > 0
                    && chars[i - 1].is_alphanumeric()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if inside {
                    out.push(c);
                }
            }
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------
// Tokens

/// Splits leading and trailing punctuation off a token: `("(", "555", ")")`.
fn parts(token: &str) -> (&str, &str, &str) {
    let lead_len = token
        .char_indices()
        .find(|(_, c)| !matches!(c, '"' | '\'' | '(' | '[' | '{' | '“' | '‘' | '¿' | '¡'))
        .map_or(token.len(), |(i, _)| i);
    let rest = &token[lead_len..];
    let core_len = rest
        .char_indices()
        .rev()
        .find(|(_, c)| {
            !matches!(
                c,
                '.' | ',' | ';' | ':' | '!' | '?' | '"' | '\'' | ')' | ']' | '}' | '”' | '’'
            )
        })
        .map_or(0, |(i, c)| i + c.len_utf8());
    (&token[..lead_len], &rest[..core_len], &rest[core_len..])
}

/// The token's text without surrounding punctuation.
fn core(token: &str) -> &str {
    parts(token).1
}

fn starts_upper(word: &str) -> bool {
    word.chars().next().is_some_and(char::is_uppercase)
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Speaks `tokens[i]` (and any it takes with it) into `out`; the tokens consumed.
fn speak(tokens: &[&str], i: usize, out: &mut Vec<String>) -> usize {
    if let Some((words, used)) = phone(tokens, i) {
        out.push(words);
        return used;
    }
    let (lead, word, trail) = parts(tokens[i]);
    let next = tokens.get(i + 1).map(|t| core(t)).unwrap_or("");
    let prev = i.checked_sub(1).map(|p| core(tokens[p])).unwrap_or("");
    let last = i + 1 == tokens.len();
    let lead = lead.replace(['(', '[', '{'], "");
    let push = |out: &mut Vec<String>, spoken: String, trail: &str| {
        // "p.m." already ends with the sentence's stop.
        let trail = match spoken.ends_with('.') {
            true => trail.strip_prefix('.').unwrap_or(trail),
            false => trail,
        };
        out.push(format!(
            "{lead}{spoken}{}",
            trail.replace([')', ']', '}'], "")
        ));
    };

    // Dot leaders ("Service ...... 555-0100") and ellipses are a pause.
    if word.is_empty() && trail.contains("..") {
        out.push(",".into());
        return 1;
    }
    // A spaced dash or slash between numbers, times or days: "9:00 am - 8:00 pm".
    if matches!(word, "-" | "–" | "—" | "/") {
        let numeric = |s: &str| s.starts_with(|c: char| c.is_ascii_digit() || c == '$');
        let from = prev.ends_with(|c: char| c.is_ascii_digit())
            || meridiem(prev).is_some()
            || weekday(prev).is_some();
        let to = numeric(next) || weekday(next).is_some();
        let said = if word != "/" && from && to { "to" } else { "," };
        out.push(said.into());
        return 1;
    }
    // Two-token forms first: "7:30 am", "$1.5 million", "Dec 25", "25 mpg".
    if let Some(am) = meridiem(next)
        && let Some(t) = time(word, Some(am))
    {
        push(out, t, parts(tokens[i + 1]).2);
        return 2;
    }
    if let Some(scale) = scale_word(next)
        && let Some(m) = money(word, Some(scale))
    {
        push(out, m, parts(tokens[i + 1]).2);
        return 2;
    }
    if let Some(month) = month_name(word, true)
        && let Some(day) = day_number(next)
    {
        push(
            out,
            format!("{month} {}", ordinal(day)),
            parts(tokens[i + 1]).2,
        );
        return 2;
    }
    if let Some(n) = numbers::number(word)
        && let Some((one, many)) = unit(next)
    {
        let unit = if word == "1" { one } else { many };
        push(out, format!("{n} {unit}"), parts(tokens[i + 1]).2);
        return 2;
    }
    if matches!(
        word,
        "stock" | "Stock" | "VIN" | "vin" | "#" | "No" | "number" | "Number"
    ) && i + 1 < tokens.len()
        && is_code(next)
    {
        let said = match word {
            "#" | "No" => "number".to_owned(),
            "VIN" | "vin" => "V I N".to_owned(),
            w => w.to_owned(),
        };
        let (_, _, t2) = parts(tokens[i + 1]);
        let sep = if trail.is_empty() || trail == "." {
            " ".to_owned()
        } else {
            format!("{trail} ")
        };
        push(out, format!("{said}{sep}{}", spell(next)), t2);
        return 2;
    }

    // A capitalised word before this one is a name unless it opens the sentence.
    let after_name = prev.starts_with(|c: char| c.is_ascii_digit())
        || (starts_upper(prev) && i >= 2 && !tokens[i - 2].ends_with(['.', '!', '?', ':']));
    let ctx = Context {
        prev,
        next,
        last,
        trail,
        after_name,
    };
    let spoken = word_alone(word, &ctx);
    match spoken {
        Some((s, keep_trail)) => {
            let trail = if keep_trail {
                trail
            } else {
                trail.trim_start_matches('.')
            };
            push(out, s, trail);
        }
        None => push(out, word.to_owned(), trail),
    }
    1
}

/// Where a token stands.
#[derive(Default)]
struct Context<'a> {
    /// The token before, without punctuation.
    prev: &'a str,
    /// The token after, without punctuation.
    next: &'a str,
    /// The token ends the text.
    last: bool,
    /// Its trailing punctuation.
    trail: &'a str,
    /// The token before is a name or a number (not a capitalised sentence start).
    after_name: bool,
}

/// One token's spoken form; the bool says whether a trailing `.` is still said (false:
/// the period belonged to an abbreviation).
fn word_alone(word: &str, ctx: &Context<'_>) -> Option<(String, bool)> {
    let next = ctx.next;
    if word.is_empty() {
        return None;
    }
    if let Some(e) = email(word) {
        return Some((e, true));
    }
    if let Some(u) = url(word) {
        return Some((u, true));
    }
    if let Some(r) = range(word) {
        return Some((r, true));
    }
    if let Some(m) = money(word, None) {
        return Some((m, true));
    }
    if let Some(p) = word.strip_suffix('%')
        && let Some(n) = numbers::number(p)
    {
        return Some((format!("{n} percent"), true));
    }
    if let Some(t) = time(word, None) {
        return Some((t, true));
    }
    if let Some(d) = date(word) {
        return Some((d, true));
    }
    if let Some(o) = ordinal_token(word) {
        return Some((o, true));
    }
    if let Some(code) = word.strip_prefix('#')
        && is_code(code)
    {
        return Some((format!("number {}", spell(code)), true));
    }
    if is_vin(word) || is_long_code(word) {
        return Some((spell(word), true));
    }
    if let Some(u) = attached_unit(word) {
        return Some((u, true));
    }
    if is_digits(word) {
        let n: u64 = word.parse().ok()?;
        if word.len() == 4 && (1900..2100).contains(&n) && unit(next).is_none() {
            return Some((year(n), true));
        }
        if (3..=5).contains(&word.len()) && starts_upper(next) && street_follows(next) {
            return Some((numbers::pairs(word), true));
        }
        if word.starts_with('0') && word.len() > 1 {
            return Some((numbers::spell_digits(word), true));
        }
        return Some((cardinal(n), true));
    }
    if let Some(n) = numbers::number(word) {
        return Some((n, true));
    }
    if let Some(rest) = word.strip_prefix('~')
        && let Some(n) = numbers::number(rest)
    {
        return Some((format!("about {n}"), true));
    }
    if let Some(rest) = word.strip_suffix('+')
        && let Some(n) = numbers::number(rest)
    {
        return Some((format!("{n} plus"), true));
    }
    abbreviation(word, ctx)
}

// ---------------------------------------------------------------------------------------
// Numbers in context

/// A phone number over one to three tokens: "(555) 123-4567", "555-123-4567",
/// "+1 555 123 4567", "1-800-555-0199", "555.123.4567"; digits one by one, groups
/// separated by a pause.
fn phone(tokens: &[&str], i: usize) -> Option<(String, usize)> {
    for used in (1..=4).rev() {
        let Some(span) = tokens.get(i..i + used) else {
            continue;
        };
        let (lead, _, _) = parts(span[0]);
        let (_, _, trail) = parts(span[used - 1]);
        let joined: Vec<&str> = span.iter().map(|t| core(t)).collect();
        if joined.iter().any(|c| c.is_empty()) {
            continue;
        }
        let mut text = joined.join(" ");
        if lead.contains('(') && !text.starts_with('(') {
            text.insert(0, '(');
        }
        if let Some(words) = phone_words(&text) {
            let trail = trail.replace(')', "");
            let lead = lead.replace('(', "");
            return Some((format!("{lead}{words}{trail}"), used));
        }
    }
    None
}

fn phone_words(text: &str) -> Option<String> {
    if !text
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '(' | ')' | '-' | '.' | ' ' | '+'))
    {
        return None;
    }
    let separated = text.contains(['-', '.', ' ', ')']);
    let groups: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    let plus = text.starts_with('+');
    let ok = separated
        && match lens.as_slice() {
            [3, 3, 4] => true,
            [1, 3, 3, 4] => groups[0] == "1",
            [3, 4] => text.contains('-') && !plus,
            _ => false,
        };
    if !ok || text.contains("..") || (text.contains('.') && text.contains('-')) {
        return None;
    }
    Some(
        groups
            .iter()
            .map(|g| numbers::spell_digits(g))
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// "$27,900", "$49.95", "$0.50", "$25k", "$1.2M", "$199/month", "$1.5" + "million".
fn money(word: &str, scale: Option<&str>) -> Option<String> {
    let amount = word.strip_prefix('$')?;
    let (amount, per) = match amount.split_once('/') {
        Some((a, p)) => (a, Some(per_unit(p)?)),
        None => (amount, None),
    };
    let (amount, suffix_scale) = match amount.char_indices().last()? {
        (i, 'k' | 'K') => (&amount[..i], Some("thousand")),
        (i, 'M' | 'm') => (&amount[..i], Some("million")),
        (i, 'B' | 'b') => (&amount[..i], Some("billion")),
        _ => (amount, None),
    };
    let scale = scale.or(suffix_scale);
    let (dollars, cents) = match amount.split_once('.') {
        Some((d, c)) => (d, Some(c)),
        None => (amount, None),
    };
    let dollars_digits = numbers::grouped_digits(dollars)?;
    let mut said = if let Some(scale) = scale {
        let n = numbers::number(amount)?;
        format!("{n} {scale} dollars")
    } else {
        let d: u64 = if dollars_digits.is_empty() {
            0
        } else {
            dollars_digits.parse().ok()?
        };
        let cents: u64 = match cents {
            Some(c) if c.len() == 2 && is_digits(c) => c.parse().ok()?,
            Some(_) => return None,
            None => 0,
        };
        let dollar_words = match d {
            1 => "one dollar".to_owned(),
            d => format!("{} dollars", cardinal(d)),
        };
        let cent_words = match cents {
            1 => "one cent".to_owned(),
            c => format!("{} cents", cardinal(c)),
        };
        match (d, cents) {
            (0, 0) => "zero dollars".to_owned(),
            (0, _) => cent_words,
            (_, 0) => dollar_words,
            _ => format!("{dollar_words} and {cent_words}"),
        }
    };
    if let Some(per) = per {
        said.push(' ');
        said.push_str(per);
    }
    Some(said)
}

fn per_unit(unit: &str) -> Option<&'static str> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "mo" | "month" => "a month",
        "yr" | "year" => "a year",
        "wk" | "week" => "a week",
        "day" => "a day",
        "hr" | "hour" => "an hour",
        "mi" | "mile" => "a mile",
        _ => return None,
    })
}

fn scale_word(word: &str) -> Option<&'static str> {
    Some(match word.to_ascii_lowercase().as_str() {
        "thousand" => "thousand",
        "million" => "million",
        "billion" => "billion",
        _ => return None,
    })
}

/// "am", "a.m", "PM", … (the trailing period is already split off).
fn meridiem(word: &str) -> Option<&'static str> {
    match word.to_ascii_lowercase().as_str() {
        "am" | "a.m" | "a.m." => Some("a.m."),
        "pm" | "p.m" | "p.m." => Some("p.m."),
        _ => None,
    }
}

/// "7:30", "7:30am", "9am", "12pm", "18:00"; `am` when the next token said it.
fn time(word: &str, am: Option<&str>) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let (clock, attached) = ["a.m.", "p.m.", "a.m", "p.m", "am", "pm"]
        .iter()
        .find_map(|s| lower.strip_suffix(s).map(|c| (c.to_owned(), meridiem(s))))
        .unwrap_or((lower.clone(), None));
    let suffix = attached.or(am);
    let (h, m) = match clock.split_once(':') {
        Some((h, m)) if m.len() == 2 && is_digits(m) => (h, Some(m)),
        Some(_) => return None,
        None if suffix.is_some() => (clock.as_str(), None),
        None => return None,
    };
    if !is_digits(h) || h.len() > 2 {
        return None;
    }
    let hour: u64 = h.parse().ok()?;
    let minute: u64 = m.map_or(Some(0), |m| m.parse().ok())?;
    if minute > 59 || hour > 24 || (suffix.is_some() && !(1..=12).contains(&hour)) {
        return None;
    }
    let minutes = match minute {
        0 => String::new(),
        1..=9 => format!(" oh {}", cardinal(minute)),
        _ => format!(" {}", cardinal(minute)),
    };
    if let Some(s) = suffix {
        return Some(format!("{}{minutes} {s}", cardinal(hour)));
    }
    // No a.m./p.m.: a 24-hour time ("18:00", "09:30") is said on the 12-hour clock.
    let twenty_four = hour > 12 || h.len() == 2 && h.starts_with('0') || hour == 0;
    if twenty_four {
        let said = match (hour % 24, minute) {
            (0, 0) => "midnight".to_owned(),
            (12, 0) => "noon".to_owned(),
            (h, _) => {
                let h12 = if h % 12 == 0 { 12 } else { h % 12 };
                let s = if h < 12 { "a.m." } else { "p.m." };
                format!("{}{minutes} {s}", cardinal(h12))
            }
        };
        return Some(said);
    }
    if minute == 0 {
        return Some(format!("{} o'clock", cardinal(hour)));
    }
    Some(format!("{}{minutes}", cardinal(hour)))
}

/// "9am–6pm", "Mon–Fri", "$199-$299", "2.9%–4.9%", "9-5": each side, joined by "to".
fn range(word: &str) -> Option<String> {
    let (a, b) = word
        .split_once(['–', '—'])
        .or_else(|| word.split_once('-'))?;
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let numeric = |s: &str| s.starts_with(|c: char| c.is_ascii_digit() || c == '$');
    let days = weekday(a).is_some() && weekday(b).is_some();
    if !(days || word.contains(['–', '—']) || numeric(a) && numeric(b)) {
        return None;
    }
    // "2026-12-25" is a date, not a range.
    if date(word).is_some() || b.contains(['-', '–', '—']) {
        return None;
    }
    let side = |s: &str| -> String {
        if let Some(d) = weekday(s) {
            return d.to_owned();
        }
        if let Some(m) = meridiem(s) {
            return m.to_owned();
        }
        word_alone(s, &Context::default()).map_or_else(|| s.to_owned(), |(w, _)| w)
    };
    // "9–6pm": the second side's a.m./p.m. holds for the first.
    let a_said = match (time(a, None), meridiem_of(b)) {
        (None, Some(m)) if is_digits(a) => time(a, Some(m)).unwrap_or_else(|| side(a)),
        _ => side(a),
    };
    // "$199–299": the second side is dollars too.
    let b_said = if a.starts_with('$') && is_digits(b.trim_end_matches('%')) {
        side(&format!("${b}"))
    } else if a.ends_with('%') && numbers::number(b).is_some() {
        side(&format!("{b}%"))
    } else {
        side(b)
    };
    Some(format!("{a_said} to {b_said}"))
}

fn meridiem_of(word: &str) -> Option<&'static str> {
    let lower = word.to_ascii_lowercase();
    ["am", "pm", "a.m", "p.m", "a.m.", "p.m."]
        .iter()
        .find(|s| lower.ends_with(*s))
        .and_then(|s| meridiem(s))
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A month's name from its name or abbreviation ("Dec", "Sept"); `abbreviations` also
/// accepts the short forms.
fn month_name(word: &str, abbreviations: bool) -> Option<&'static str> {
    let w = word.trim_end_matches('.');
    if !starts_upper(w) {
        return None;
    }
    let lower = w.to_ascii_lowercase();
    MONTHS.iter().copied().find(|m| {
        let ml = m.to_ascii_lowercase();
        ml == lower
            || (abbreviations && lower.len() >= 3 && (ml.starts_with(&lower)) && {
                // "Sept" is the only four-letter short form; "Mar" must not be "Marks".
                lower.len() == 3 || lower == "sept"
            })
    })
}

/// "25", "25th", "1st" as a day of the month.
fn day_number(word: &str) -> Option<u64> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !is_digits(digits) || !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    let d: u64 = digits.parse().ok()?;
    (1..=31).contains(&d).then_some(d)
}

/// "12/25", "12/25/2026", "12/25/26", "2026-12-25"; small fractions ("1/2", "3/4").
fn date(word: &str) -> Option<String> {
    let said_year = |y: &str| -> Option<String> {
        let n: u64 = y.parse().ok()?;
        match y.len() {
            4 => Some(year(n)),
            2 => Some(year(2000 + n)),
            _ => None,
        }
    };
    let month_day = |m: &str, d: &str| -> Option<String> {
        let m: usize = m.parse().ok()?;
        let d: u64 = d.parse().ok()?;
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
            return None;
        }
        Some(format!("{} {}", MONTHS[m - 1], ordinal(d)))
    };
    let fields: Vec<&str> = word.split('/').collect();
    if fields.iter().all(|f| is_digits(f) && f.len() <= 4) {
        match fields.as_slice() {
            [n, d] if d.len() <= 1 => {
                let (n, d): (u64, u64) = (n.parse().ok()?, d.parse().ok()?);
                let name = match d {
                    2 => "half",
                    3 => "third",
                    4 => "quarter",
                    _ => return month_day(fields[0], fields[1]),
                };
                if n == 0 || n >= d {
                    return month_day(fields[0], fields[1]);
                }
                let plural = if n > 1 { "s" } else { "" };
                let name = if name == "half" && n > 1 {
                    "halve"
                } else {
                    name
                };
                return Some(format!("{} {name}{plural}", cardinal(n)));
            }
            [m, d] if m.len() <= 2 && d.len() <= 2 => return month_day(m, d),
            [m, d, y] if m.len() <= 2 && d.len() <= 2 => {
                return Some(format!("{}, {}", month_day(m, d)?, said_year(y)?));
            }
            _ => {}
        }
    }
    let iso: Vec<&str> = word.split('-').collect();
    if let [y, m, d] = iso.as_slice()
        && y.len() == 4
        && m.len() == 2
        && d.len() == 2
        && [y, m, d].iter().all(|f| is_digits(f))
    {
        return Some(format!("{}, {}", month_day(m, d)?, said_year(y)?));
    }
    None
}

/// "1st", "22nd", "25th".
fn ordinal_token(word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    for suffix in ["st", "nd", "rd", "th"] {
        if let Some(d) = lower.strip_suffix(suffix)
            && let Some(digits) = numbers::grouped_digits(d)
            && !digits.is_empty()
        {
            return Some(ordinal(digits.parse().ok()?));
        }
    }
    None
}

/// Units after a number: (singular, plural).
fn unit(word: &str) -> Option<(&'static str, &'static str)> {
    Some(match word {
        "mi" | "mi." | "miles" | "mile" => ("mile", "miles"),
        "km" | "kms" => ("kilometer", "kilometers"),
        "mpg" | "MPG" => ("mile per gallon", "miles per gallon"),
        "mph" | "MPH" => ("mile per hour", "miles per hour"),
        "kWh" | "kwh" | "KWH" => ("kilowatt hour", "kilowatt hours"),
        "kW" | "kw" => ("kilowatt", "kilowatts"),
        "hp" | "HP" => ("horsepower", "horsepower"),
        "lb" | "lbs" | "lb." | "lbs." => ("pound", "pounds"),
        "ft" | "ft." => ("foot", "feet"),
        "gal" | "gal." => ("gallon", "gallons"),
        "L" => ("liter", "liters"),
        "min" | "mins" => ("minute", "minutes"),
        "hr" | "hrs" => ("hour", "hours"),
        "yr" | "yrs" => ("year", "years"),
        "mo" | "mos" => ("month", "months"),
        _ => return None,
    })
}

/// A number with its unit attached: "35mpg", "2.0L", "300hp", "12,000mi", "75kWh".
fn attached_unit(word: &str) -> Option<String> {
    let split = word.find(|c: char| c.is_ascii_alphabetic())?;
    let (n, u) = word.split_at(split);
    let number = numbers::number(n)?;
    let (one, many) = unit(u)?;
    Some(format!("{number} {}", if n == "1" { one } else { many }))
}

// ---------------------------------------------------------------------------------------
// Codes, addresses, mail and the web

/// A 17-character vehicle identification number (no I, O or Q).
fn is_vin(word: &str) -> bool {
    word.len() == 17
        && word.chars().all(|c| {
            c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q'))
        })
        && word.chars().any(|c| c.is_ascii_digit())
        && word.chars().any(|c| c.is_ascii_uppercase())
}

/// A stock-number-like code: letters and at least two digits ("A1234", "RT-4471").
fn is_code(word: &str) -> bool {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    !word.is_empty()
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && digits >= 2
        && word
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && !word.chars().any(|c| c.is_ascii_lowercase())
}

/// Letters and four or more digits in one word ("RT4471", "B20931"), said one by one.
fn is_long_code(word: &str) -> bool {
    let digits = word.chars().filter(char::is_ascii_digit).count();
    word.len() >= 6
        && digits >= 4
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
}

/// Character by character; long codes in groups of four with a pause between.
fn spell(code: &str) -> String {
    let chars: Vec<String> = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| match c {
            d if d.is_ascii_digit() => numbers::spell_digits(&d.to_string()),
            // A lone "A" is read as the article; "A-" is the letter's name.
            'A' | 'a' => "A-".to_owned(),
            l => l.to_ascii_uppercase().to_string(),
        })
        .collect();
    if chars.len() <= 8 {
        return chars.join(" ");
    }
    chars
        .chunks(4)
        .map(|g| g.join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Words that end a street name: a number before them is a house number.
fn street_follows(next: &str) -> bool {
    // Only the next token is seen here: a capitalised name makes a house number likely
    // when the token itself is a street word or a name ("1420 Harbor Rd.").
    starts_upper(next) && month_name(next, true).is_none() && weekday(next).is_none()
}

fn street_suffix(word: &str) -> Option<&'static str> {
    Some(match word {
        "Rd" => "Road",
        "St" => "Street",
        "Ave" | "Av" => "Avenue",
        "Blvd" => "Boulevard",
        "Dr" => "Drive",
        "Ln" => "Lane",
        "Ct" => "Court",
        "Pkwy" => "Parkway",
        "Hwy" | "hwy" => "Highway",
        "Pl" => "Place",
        "Cir" => "Circle",
        "Ter" => "Terrace",
        "Sq" => "Square",
        "Trl" => "Trail",
        "Fwy" => "Freeway",
        "Expy" => "Expressway",
        _ => return None,
    })
}

fn weekday(word: &str) -> Option<&'static str> {
    Some(match word.trim_end_matches('.') {
        "Mon" | "Monday" => "Monday",
        "Tue" | "Tues" | "Tuesday" => "Tuesday",
        "Wed" | "Weds" | "Wednesday" => "Wednesday",
        "Thu" | "Thur" | "Thurs" | "Thursday" => "Thursday",
        "Fri" | "Friday" => "Friday",
        "Sat" | "Saturday" => "Saturday",
        "Sun" | "Sunday" => "Sunday",
        _ => return None,
    })
}

/// Abbreviations and symbols; `Some((said, keep_period))`.
fn abbreviation(word: &str, ctx: &Context<'_>) -> Option<(String, bool)> {
    let Context {
        prev,
        next,
        last,
        trail,
        after_name,
    } = *ctx;
    let dotted = trail.starts_with('.');
    // A period after an expanded abbreviation is only said when it also ends the
    // sentence: at the end, or before a capitalised word that is no name.
    let ends = last || (trail == "." && starts_upper(next));
    if let Some(street) = street_suffix(word) {
        // "St. Louis", "Dr. Patel": before a name and not after one, a title.
        if !after_name && starts_upper(next) {
            match word {
                "St" => return Some(("Saint".into(), false)),
                "Dr" => return Some(("Doctor".into(), false)),
                _ => {}
            }
        }
        if after_name || !dotted {
            return Some((street.into(), ends));
        }
    }
    if let Some(day) = weekday(word)
        && word.len() <= 5
        && (word != "Sun"
            || next.starts_with(|c: char| c.is_ascii_digit())
            || trail.contains([':', ',']))
    {
        return Some((day.into(), last));
    }
    if let Some(month) = month_name(word, true)
        && word.len() <= 4
        && (dotted || trail.is_empty() && is_digits(next))
        && word != "May"
    {
        return Some((month.into(), last));
    }
    let said = match word {
        "Ste" => "Suite",
        "Apt" => "Apartment",
        "Bldg" => "Building",
        "Mr" => "Mister",
        "Mrs" => "Missus",
        "Ms" => "Miz",
        "Jr" => "Junior",
        "Sr" => "Senior",
        "approx" => "approximately",
        "vs" => "versus",
        "etc" => "et cetera",
        "e.g" => "for example",
        "i.e" => "that is",
        "incl" => "including",
        "w/" => "with",
        "w/o" => "without",
        "24/7" => "twenty-four seven",
        "N" | "S" | "E" | "W" | "NE" | "NW" | "SE" | "SW"
            if starts_upper(next) && prev.starts_with(|c: char| c.is_ascii_digit()) =>
        {
            match word {
                "N" => "North",
                "S" => "South",
                "E" => "East",
                "W" => "West",
                "NE" => "Northeast",
                "NW" => "Northwest",
                "SE" => "Southeast",
                _ => "Southwest",
            }
        }
        "am" | "pm" | "AM" | "PM" if prev.ends_with(|c: char| c.is_ascii_digit()) => {
            return Some((meridiem(word).unwrap_or(word).into(), false));
        }
        "APR" => "A- P R",
        "MSRP" => "M S R P",
        "SUV" | "SUVs" => {
            return Some((
                if word.ends_with('s') {
                    "S U Vs"
                } else {
                    "S U V"
                }
                .into(),
                true,
            ));
        }
        "VIN" => "V I N",
        "AWD" => "all-wheel drive",
        "FWD" => "front-wheel drive",
        "RWD" => "rear-wheel drive",
        "4WD" => "four-wheel drive",
        "EV" => "E V",
        "EVs" => "E Vs",
        "CPO" => "certified pre-owned",
        "DMV" => "D M V",
        "&" => "and",
        "+" => "plus",
        "=" => "equals",
        "@" => "at",
        "%" => "percent",
        "#" => "number",
        "–" | "—" | "-" | "|" | "•" | "*" => ",",
        _ => {
            // "No. 5": the number sign, not "no".
            if word == "No" && dotted && next.starts_with(|c: char| c.is_ascii_digit()) {
                return Some(("number".into(), false));
            }
            return None;
        }
    };
    let keep = !dotted || ends && !matches!(word, "Mr" | "Mrs" | "Ms" | "Jr" | "Sr");
    Some((said.into(), keep || last))
}

/// "sam@example.com" → "sam at example dot com".
fn email(word: &str) -> Option<String> {
    let (user, domain) = word.split_once('@')?;
    if user.is_empty() || !domain.contains('.') || domain.starts_with('.') {
        return None;
    }
    Some(format!(
        "{} at {}",
        address_words(user),
        address_words(domain)
    ))
}

/// "https://www.example.com/service" → "example dot com slash service".
fn url(word: &str) -> Option<String> {
    let lower = word.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .map(|r| (r, true))
        .unwrap_or((&lower, false));
    let (rest, schemed) = rest;
    let rest = rest.strip_prefix("www.").unwrap_or(rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let tld = host.rsplit('.').next().unwrap_or("");
    let known = matches!(
        tld,
        "com" | "org" | "net" | "io" | "co" | "us" | "ca" | "biz" | "info" | "auto" | "cars"
    );
    if !host.contains('.') || !(schemed || known) || host.contains('@') {
        return None;
    }
    if !host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return None;
    }
    let mut said = address_words(host);
    let path = path.split(['?', '#']).next().unwrap_or("");
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        said.push_str(" slash ");
        said.push_str(&segment.replace(['-', '_', '.'], " "));
    }
    Some(said)
}

fn address_words(part: &str) -> String {
    let mut out = String::new();
    for c in part.chars() {
        match c {
            '.' => out.push_str(" dot "),
            '_' => out.push_str(" underscore "),
            '-' => out.push_str(" dash "),
            '+' => out.push_str(" plus "),
            d if d.is_ascii_digit() => {
                out.push(' ');
                out.push_str(&numbers::spell_digits(&d.to_string()));
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Spacing and punctuation left by the rewrites: no space before punctuation, no
/// doubled commas or a comma before a stop.
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let is_punct = word
            .chars()
            .all(|c| matches!(c, ',' | '.' | ';' | ':' | '!' | '?'));
        if is_punct {
            // A lone mark joins the word before it, once.
            let last = out.chars().last();
            match (last, word.chars().next()) {
                (None, _) => {}
                (Some(',' | '.' | ';' | ':' | '!' | '?'), Some(',')) => {}
                (Some(','), Some(_)) => {
                    out.pop();
                    out.push_str(word);
                }
                _ => out.push_str(word),
            }
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests;
