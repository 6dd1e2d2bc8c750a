//! What a customer's question asks for, before any passage is read: the greeting in front
//! of it removed, spoken numbers written as digits ("twenty twenty one" → 2021), named days
//! and dates made to meet ("Christmas Day" ↔ "December 25", "weekend" ↔ Saturday and
//! Sunday), and the kind of fact that answers it (an address, a phone number, a person,
//! a price …).

use adam_actors::speech_text::{ONES, TENS};

use super::text::tokens;

/// The kind of fact a question asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Where: a street address.
    Address,
    /// A phone number.
    Phone,
    /// An email address.
    Email,
    /// Who: a person's name.
    Person,
    /// How much: a price.
    Price,
    /// How many: a count.
    Count,
    /// When / what time: a time of day or a day.
    Time,
    /// How long: a duration.
    Duration,
    /// How far: a distance ("100 miles", "two blocks").
    Distance,
}

impl Want {
    /// Only a sentence stating a fact of this kind answers (a price, a phone number, an
    /// email, a name, a count); for the others it is a preference.
    pub fn is_required(self) -> bool {
        matches!(
            self,
            Self::Phone | Self::Email | Self::Person | Self::Price | Self::Count | Self::Time
        )
    }

    /// The kind a question asks for, if it asks for one.
    pub fn of(question: &str) -> Option<Self> {
        let q = format!(
            " {} ",
            question
                .to_lowercase()
                .replace('’', "'")
                .replace("'s ", " is ")
                .replace(['?', ',', '.', '!'], " ")
        );
        let has = |words: &[&str]| words.iter().any(|w| q.contains(&format!(" {w} ")));
        // Question words count where a question starts ("when do you …"), not inside it
        // ("can I bring my dog when I come …"; "anyone who speaks Spanish").
        let opening: String = q.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        let opens = |words: &[&str]| {
            words
                .iter()
                .any(|w| format!(" {opening} ").contains(&format!(" {w} ")))
        };
        if has(&[
            "phone",
            "call",
            "telephone",
            "number to",
            "number for",
            "direct line",
            "line for",
            "fax",
            "text",
        ]) {
            Some(Self::Phone)
        } else if has(&["email", "e-mail", "mail address"]) {
            Some(Self::Email)
        } else if has(&[
            "how long",
            "how many minutes",
            "how many hours",
            "how many days",
        ]) {
            Some(Self::Duration)
        } else if has(&["how far", "distance"]) {
            Some(Self::Distance)
        } else if has(&[
            "capacity",
            "tow",
            "towing",
            "horsepower",
            "range",
            "mpg",
            "seats",
            "seat",
            "weigh",
            "mileage",
            "miles on",
        ]) {
            // "How much can it tow" asks for a quantity, not a price.
            Some(Self::Count)
        } else if opens(&["who", "whom"]) || has(&["in charge"]) {
            Some(Self::Person)
        } else if has(&[
            "how much", "cost", "costs", "price", "prices", "priced", "charge", "fee", "fees",
            "pay", "rate",
        ]) {
            Some(Self::Price)
        } else if has(&["how many", "number of", "count"]) {
            Some(Self::Count)
        } else if opens(&["where", "whereabouts"])
            || has(&["address", "located", "location", "directions", "find you"])
        {
            Some(Self::Address)
        } else if opens(&["when"])
            || has(&[
                "what time",
                "hours",
                "open",
                "opens",
                "close",
                "closes",
                "closed",
                "until",
            ])
        {
            Some(Self::Time)
        } else {
            None
        }
    }

    /// Whether `sentence` states a fact of this kind.
    pub fn found_in(self, sentence: &str) -> bool {
        let lower = sentence.to_lowercase();
        let toks = tokens(sentence);
        match self {
            Self::Address => has_address(sentence),
            Self::Phone => has_phone(sentence),
            Self::Email => sentence.contains('@'),
            Self::Person => has_person(sentence),
            Self::Price => {
                sentence.contains('$')
                    || [
                        "dollar",
                        "free",
                        "no charge",
                        "complimentary",
                        "no cost",
                        "included",
                    ]
                    .iter()
                    .any(|w| lower.contains(w))
            }
            Self::Count => toks.iter().any(|t| {
                t.is_number()
                    || ONES.contains(&t.norm.as_str())
                    || TENS.contains(&t.norm.as_str()) && !t.norm.is_empty()
                    || matches!(t.norm.as_str(), "dozen" | "none" | "hundred")
            }),
            Self::Time => {
                toks.iter().any(|t| {
                    matches!(
                        t.norm.as_str(),
                        "am" | "pm"
                            | "noon"
                            | "midnight"
                            | "closed"
                            | "open"
                            | "monday"
                            | "tuesday"
                            | "wednesday"
                            | "thursday"
                            | "friday"
                            | "saturday"
                            | "sunday"
                            | "weekend"
                            | "daily"
                    )
                }) || lower.contains("a.m")
                    || lower.contains("p.m")
                    || toks.iter().any(|t| t.norm.contains(':'))
            }
            Self::Distance => toks.iter().any(|t| {
                matches!(
                    t.norm.as_str(),
                    "mile"
                        | "miles"
                        | "km"
                        | "kilometer"
                        | "kilometers"
                        | "kilometre"
                        | "kilometres"
                        | "feet"
                        | "foot"
                        | "yards"
                        | "block"
                        | "blocks"
                )
            }),
            Self::Duration => toks.iter().any(|t| {
                matches!(
                    t.norm.as_str(),
                    "minute"
                        | "minutes"
                        | "hour"
                        | "hours"
                        | "day"
                        | "days"
                        | "week"
                        | "weeks"
                        | "month"
                        | "months"
                        | "year"
                        | "years"
                        | "mile"
                        | "miles"
                        | "min"
                )
            }),
        }
    }
}

const STREET: &[&str] = &[
    "road",
    "rd",
    "street",
    "st",
    "avenue",
    "ave",
    "boulevard",
    "blvd",
    "drive",
    "dr",
    "lane",
    "ln",
    "way",
    "highway",
    "hwy",
    "parkway",
    "pkwy",
    "court",
    "ct",
    "place",
    "pl",
    "route",
    "pike",
    "circle",
    "terrace",
    "square",
    "plaza",
];

/// A house number followed within a few words by a street word ("1200 Harbor Road").
fn has_address(sentence: &str) -> bool {
    let toks = tokens(sentence);
    toks.iter().enumerate().any(|(i, t)| {
        t.norm.chars().all(|c| c.is_ascii_digit())
            && !t.norm.is_empty()
            && toks
                .iter()
                .skip(i + 1)
                .take(5)
                .any(|n| STREET.contains(&n.norm.as_str()))
    })
}

/// Seven or more digits in one run of digits, spaces, dots, dashes and brackets.
fn has_phone(sentence: &str) -> bool {
    let mut digits = 0;
    for c in sentence.chars() {
        if c.is_ascii_digit() {
            digits += 1;
            if digits >= 7 {
                return true;
            }
        } else if !matches!(c, ' ' | '-' | '.' | '(' | ')' | '+') {
            digits = 0;
        }
    }
    false
}

/// A person: a job ("manager", "runs", "founded" …) and a name (two capitalised words
/// that are not a day, a month, a department or a place word): "Tom Brezinski — Service
/// Manager", "the parts counter is run by Priya Nair".
fn has_person(sentence: &str) -> bool {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    let name = |w: &str| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric());
        let w = w.strip_suffix("'s").unwrap_or(w);
        w.len() > 1
            && w.chars().next().is_some_and(char::is_uppercase)
            && w.chars()
                .skip(1)
                .all(|c| c.is_lowercase() || c == '\'' || c == '-')
            && !is_calendar(&w.to_lowercase())
            && !NOT_NAMES.contains(&w.to_lowercase().as_str())
    };
    let pair = words.windows(2).any(|pair| name(pair[0]) && name(pair[1]));
    let lower = sentence.to_lowercase();
    pair && ROLES.iter().any(|r| lower.contains(r))
}

/// Capitalised words that are not names.
const NOT_NAMES: &[&str] = &[
    "service",
    "services",
    "department",
    "sales",
    "parts",
    "finance",
    "financing",
    "body",
    "shop",
    "center",
    "centre",
    "collision",
    "motors",
    "auto",
    "automotive",
    "cars",
    "car",
    "road",
    "street",
    "avenue",
    "drive",
    "lane",
    "boulevard",
    "highway",
    "way",
    "manager",
    "director",
    "advisor",
    "advisors",
    "general",
    "new",
    "used",
    "pre-owned",
    "certified",
    "customer",
    "customers",
    "team",
    "desk",
    "counter",
    "office",
    "showroom",
    "lounge",
    "main",
    "line",
    "direct",
    "email",
    "phone",
    "fax",
    "hours",
    "holiday",
    "closed",
    "open",
    "free",
    "price",
    "prices",
    "inc",
    "llc",
    "co",
    "company",
    "group",
    "dealership",
    "our",
    "we",
    "you",
    "your",
    "the",
    "a",
    "an",
    "and",
    "or",
    "for",
    "with",
    "at",
    "on",
    "in",
    "of",
    "wi-fi",
    "wifi",
    "faq",
    "q",
    "a:",
    "yes",
    "no",
    "please",
    "note",
    "staff",
    "directory",
    "contact",
    "us",
    "about",
    "welcome",
    "visit",
    "call",
    "ask",
    "all",
    "every",
    "each",
];

/// Words that put a person next to a job.
const ROLES: &[&str] = &[
    "manager",
    "director",
    "advisor",
    "adviser",
    "owner",
    "founder",
    "founded",
    "started",
    "consultant",
    "technician",
    "specialist",
    "president",
    "supervisor",
    "coordinator",
    "representative",
    "runs ",
    "run by",
    "leads ",
    "led by",
    "manages ",
    "managed by",
    "oversees",
    "in charge",
    "heads ",
    "head of",
    "contact ",
    "ask for",
    "speak to",
    "talk to",
    "estimator",
    "controller",
    "receptionist",
    "reach ",
    "owned by",
    "family",
    "chief",
    "officer",
    "agent",
    "partner",
    "principal",
];

/// Greetings a question may start with ("Hi there, when do you open?").
const GREETINGS: &[&str] = &[
    "hi there",
    "hello there",
    "hey there",
    "good morning",
    "good afternoon",
    "good evening",
    "hi",
    "hello",
    "hey",
    "howdy",
    "greetings",
    "yo",
    "um",
    "uh",
    "so",
    "okay",
    "ok",
    "well",
];

/// Letters spelled one by one, as a speech recogniser or a customer writes a trim or a
/// model ("the kestrel g t", "an s u v"), joined into the capitalised name they spell
/// ("GT", "SUV"), so that a name asked about is checked like any other. "a" and "I" alone
/// are words; the letters must be two or more in a row.
pub fn spelled_letters_joined(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let letter = |w: &str| {
        let core = w.trim_end_matches(['.', ',', '?', '!']);
        core.len() == 1
            && core.chars().all(|c| c.is_ascii_alphabetic())
            && !matches!(core, "a" | "A" | "i" | "I")
    };
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let run = words[i..].iter().take_while(|w| letter(w)).count();
        if run >= 2 {
            let last = words[i + run - 1];
            let tail: String = last.chars().skip(1).collect();
            let name: String = words[i..i + run]
                .iter()
                .filter_map(|w| w.chars().next())
                .map(|c| c.to_ascii_uppercase())
                .collect();
            out.push(format!("{name}{tail}"));
            i += run;
        } else {
            out.push(words[i].to_owned());
            i += 1;
        }
    }
    out.join(" ")
}

/// A question answered by yes or no ("do you …", "can I …", "is there …"): the kind of
/// fact it mentions ("do you mark up the sticker price?") is welcome in the answer but
/// not required of it.
pub fn is_yes_no(question: &str) -> bool {
    let lower = without_greeting(question).to_lowercase();
    [
        "do you ",
        "does ",
        "can i ",
        "can you ",
        "can we ",
        "is there ",
        "are there ",
        "is it ",
        "are you ",
        "will you ",
        "could i ",
        "may i ",
        "do i ",
        "should i ",
    ]
    .iter()
    .any(|o| lower.starts_with(o))
}

/// Words that open a question of their own after "and" ("… and what's their number?").
const OPENERS: &[&str] = &[
    "what", "what's", "whats", "how", "how's", "who", "who's", "whos", "when", "where", "where's",
    "which", "is", "are", "do", "does", "can", "could", "will", "would", "should",
];

/// Words pointing back at the first question's subject ("their number", "is it open").
const POINTS_BACK: &[&str] = &[
    "their", "they", "them", "it", "its", "it's", "his", "her", "he", "she", "there", "that",
];

/// Two questions asked as one ("who runs the body shop and what's their number?"): the
/// first, and the second with the first's subject words added when it points back at them
/// ("what's their number? body shop"). `None` for one question ("are you open Monday and
/// Tuesday?"), or when either part is under three words.
pub fn two_questions(question: &str) -> Option<(String, String)> {
    let question = without_greeting(question);
    let lower = question.to_lowercase().replace('’', "'");
    let words: Vec<&str> = lower.split_whitespace().collect();
    let originals: Vec<&str> = question.split_whitespace().collect();
    if words.len() != originals.len() {
        return None;
    }
    let at = (3..words.len().saturating_sub(3)).find(|&i| {
        words[i].trim_matches(|c: char| !c.is_alphanumeric()) == "and"
            && OPENERS
                .contains(&words[i + 1].trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
    })?;
    let first = originals[..at]
        .join(" ")
        .trim_end_matches([',', ';', ' '])
        .to_owned();
    let mut second = originals[at + 1..].join(" ");
    let points_back = words[at + 1..].iter().any(|w| {
        POINTS_BACK.contains(&w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\''))
    });
    if points_back {
        let opener: std::collections::HashSet<&str> = OPENERS.iter().copied().collect();
        let subject: Vec<&str> = originals[..at]
            .iter()
            .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-'))
            .filter(|w| {
                let l = w.to_lowercase();
                w.len() > 2
                    && !opener.contains(l.as_str())
                    && !super::text::STOP.contains(&l.as_str())
                    && !super::text::COMMON.contains(&l.as_str())
            })
            .collect();
        if !subject.is_empty() {
            second = format!("{} {}", second.trim_end_matches('?'), subject.join(" "));
        }
    }
    Some((first, second))
}

/// The question without a greeting or filler in front ("Hi, when do you open?" → "when do
/// you open?"); the whole text when nothing is left after it.
pub fn without_greeting(question: &str) -> &str {
    let mut rest = question.trim();
    loop {
        let lower = rest.to_lowercase();
        let Some(g) = GREETINGS.iter().find(|g| {
            lower.starts_with(**g)
                && lower[g.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| !c.is_alphanumeric())
        }) else {
            break;
        };
        let after = rest[g.len()..].trim_start_matches(|c: char| {
            c.is_whitespace() || matches!(c, ',' | '!' | '.' | '-' | '—')
        });
        if after.split_whitespace().count() < 2 {
            break;
        }
        rest = after;
    }
    rest
}

fn small_number(word: &str) -> Option<u64> {
    if let Some(i) = ONES.iter().position(|u| *u == word) {
        return Some(i as u64);
    }
    TENS.iter()
        .position(|t| !t.is_empty() && *t == word)
        .map(|i| i as u64 * 10)
}

/// Spoken numbers as digits: "forty nine ninety five" stays words-free as "49 95",
/// "twenty twenty one" (a year) is 2021, "two thousand and five" is 2005, "three hundred"
/// is 300. "one" alone is left as a word ("the one with a sunroof").
pub fn digits_for_words(text: &str) -> String {
    let joined = spelled_letters_joined(text);
    let words: Vec<&str> = joined.split_whitespace().collect();
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let (value, used) = read_number(&words[i..]);
        if used == 0 || used == 1 && matches!(clean(words[i]).as_str(), "one" | "zero") {
            out.push(words[i].to_owned());
            i += 1;
            continue;
        }
        let last = words[i + used - 1];
        let tail: String = last
            .chars()
            .rev()
            .take_while(|c| !c.is_alphanumeric())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out.push(format!("{value}{tail}"));
        i += used;
    }
    out.join(" ")
}

fn clean(word: &str) -> String {
    word.trim_matches(|c: char| !c.is_alphanumeric())
        .to_lowercase()
        .replace('-', " ")
}

/// Reads a number from the start of `words`: its value and how many words it took.
fn read_number(words: &[&str]) -> (u64, usize) {
    // Hyphenated forms ("forty-nine") are split into their parts first.
    let mut parts: Vec<(String, usize)> = Vec::new();
    for (i, w) in words.iter().enumerate().take(8) {
        let c = clean(w);
        let pieces: Vec<&str> = c.split(' ').collect();
        if !pieces
            .iter()
            .all(|p| small_number(p).is_some() || matches!(*p, "hundred" | "thousand" | "and"))
        {
            break;
        }
        for p in pieces {
            parts.push((p.to_owned(), i + 1));
        }
        // Punctuation after a word ends the number ("five, and ...").
        if w.ends_with([',', '.', '?', '!']) {
            break;
        }
    }
    while parts.last().is_some_and(|(p, _)| p == "and") {
        parts.pop();
    }
    if parts.is_empty() || parts[0].0 == "and" {
        return (0, 0);
    }
    // Groups below a hundred: "twenty" "one" → 21.
    let mut groups: Vec<(u64, usize)> = Vec::new();
    let mut total = 0_u64;
    let mut current: Option<u64> = None;
    let mut scaled = false;
    let mut used = 0;
    for (p, end) in &parts {
        match p.as_str() {
            "and" => continue,
            "hundred" => {
                current = Some(current.unwrap_or(1) * 100);
                scaled = true;
            }
            "thousand" => {
                total += current.take().unwrap_or(1) * 1000;
                scaled = true;
            }
            word => {
                let Some(n) = small_number(word) else { break };
                match current {
                    Some(c) if c % 100 >= 20 && c % 10 == 0 && n < 10 => current = Some(c + n),
                    Some(c) if c % 100 == 0 && c > 0 && scaled => current = Some(c + n),
                    Some(c) if !scaled => {
                        groups.push((c, *end));
                        current = Some(n);
                    }
                    Some(_) => break,
                    None if total > 0 => current = Some(n),
                    None => current = Some(n),
                }
            }
        }
        used = *end;
    }
    if !scaled {
        if let Some(c) = current {
            groups.push((c, used));
        }
        return match groups.as_slice() {
            // "twenty twenty one", "nineteen ninety nine": a year.
            [(a, _), (b, end)] if (10..=20).contains(a) && *b < 100 && *b >= 10 => {
                (a * 100 + b, *end)
            }
            [(a, end), ..] => (*a, *end),
            [] => (0, 0),
        };
    }
    (total + current.unwrap_or(0), used)
}

/// Named days and their dates, both ways (month names written out).
const NAMED_DAYS: &[(&str, &str)] = &[
    ("christmas eve", "december 24"),
    ("christmas day", "december 25"),
    ("christmas", "december 25"),
    ("boxing day", "december 26"),
    ("new year's eve", "december 31"),
    ("new years eve", "december 31"),
    ("new year's day", "january 1"),
    ("new years day", "january 1"),
    ("new year's", "january 1"),
    ("independence day", "july 4"),
    ("fourth of july", "july 4"),
    ("4th of july", "july 4"),
    ("4 of july", "july 4"),
    ("juneteenth", "june 19"),
    ("halloween", "october 31"),
    ("veterans day", "november 11"),
    ("valentine's day", "february 14"),
    ("valentines day", "february 14"),
];

/// Extra words that say the same day another way: the date of a named holiday, the
/// holiday of a date, the days of "the weekend". Added to the question for matching.
pub fn day_synonyms(question: &str) -> Vec<String> {
    let lower = format!(
        " {} ",
        tokens(question)
            .iter()
            .map(|t| t.norm.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let raw = question.to_lowercase();
    let mut out = Vec::new();
    for (name, date) in NAMED_DAYS {
        let name_norm = tokens(name)
            .iter()
            .map(|t| t.norm.clone())
            .collect::<Vec<_>>()
            .join(" ");
        if raw.contains(name) || lower.contains(&format!(" {name_norm} ")) {
            out.push((*date).to_owned());
        }
        if lower.contains(&format!(" {date} ")) {
            out.push((*name).to_owned());
        }
    }
    if lower.contains(" weekend ") || lower.contains(" weekends ") {
        out.push("saturday sunday".into());
    }
    if [
        " weekday ",
        " weekdays ",
        " weeknight ",
        " weeknights ",
        " during the week ",
        " in the week ",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        out.push("monday friday".into());
    }
    if lower.contains(" saturday ") || lower.contains(" sunday ") {
        out.push("weekend".into());
    }
    out.dedup();
    out
}

/// A question made ready for matching: greeting gone, digits for spoken numbers, and the
/// other names of the days it mentions appended.
pub fn normalised(question: &str) -> String {
    normalised_on(question, None)
}

/// [`normalised`], with "today", "tonight" and "tomorrow" also named as the weekday and
/// date they are on `today` (the dealership's date): "are you open today" on Saturday,
/// December 6 also reads "saturday, december 6".
pub fn normalised_on(question: &str, today: Option<jiff::civil::Date>) -> String {
    let q = digits_for_words(without_greeting(question));
    let mut extra = day_synonyms(&q);
    if let Some(today) = today {
        extra.extend(relative_days(&q, today));
    }
    if extra.is_empty() {
        q
    } else {
        format!("{q} ({})", extra.join(", "))
    }
}

/// "today" / "tonight" / "tomorrow" in `question` as "saturday, december 6" for `today`.
fn relative_days(question: &str, today: jiff::civil::Date) -> Vec<String> {
    let words: Vec<String> = tokens(question).into_iter().map(|t| t.norm).collect();
    let mut days = Vec::new();
    if words.iter().any(|w| w == "today" || w == "tonight") {
        days.push(today);
    }
    if words.iter().any(|w| w == "tomorrow")
        && let Ok(next) = today.tomorrow()
    {
        days.push(next);
    }
    days.into_iter()
        .map(|d| {
            let weekday = WEEKDAYS[d.weekday().to_monday_zero_offset() as usize];
            let month = MONTHS[(d.month() - 1) as usize];
            format!("{weekday}, {month} {}", d.day())
        })
        .collect()
}

/// The days of the week, Monday first.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// The months, January first.
pub const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A weekday or a month name (lower case).
pub fn is_calendar(word: &str) -> bool {
    WEEKDAYS.contains(&word) || MONTHS.contains(&word)
}

/// The date in `timezone` (an IANA name; empty or unknown: UTC) now.
pub fn local_today(timezone: &str) -> jiff::civil::Date {
    let zone = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    jiff::Timestamp::now().to_zoned(zone).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_questions_joined_by_and_are_split_and_the_second_gets_the_subject() {
        let (first, second) =
            two_questions("Who manages the paint shop and what's their extension?")
                .expect("two questions");
        assert_eq!(first, "Who manages the paint shop");
        assert!(
            second.starts_with("what's their extension") && second.ends_with("paint shop"),
            "{second}"
        );
        assert_eq!(
            two_questions("How much is a wheel alignment and how long does it take?"),
            Some((
                "How much is a wheel alignment".to_owned(),
                "how long does it take wheel alignment".to_owned()
            ))
        );
        // One question naming two days, or two things, stays one.
        assert_eq!(two_questions("Are you open on Monday and Tuesday?"), None);
        assert_eq!(two_questions("Do you sell tyres and batteries?"), None);
    }

    #[test]
    fn spelled_letters_become_the_name_they_spell() {
        assert_eq!(
            spelled_letters_joined("how much is the corvo s t"),
            "how much is the corvo ST"
        );
        assert_eq!(
            spelled_letters_joined("any e v. models?"),
            "any EV. models?"
        );
        // "a" and "I" are words, and one letter alone is left.
        assert_eq!(
            spelled_letters_joined("can i get a x ray"),
            "can i get a x ray"
        );
        assert_eq!(digits_for_words("the twenty twenty two r s"), "the 2022 RS");
    }

    #[test]
    fn yes_no_questions_and_distances_are_recognised() {
        assert!(is_yes_no("Hi, do you charge for a car wash?"));
        assert!(is_yes_no("Is there a playground?"));
        assert!(!is_yes_no("How much is a car wash?"));
        assert_eq!(
            Want::of("How far is the ferry from you?"),
            Some(Want::Distance)
        );
        assert!(Want::Distance.found_in("The ferry is two blocks away."));
        assert!(!Want::Distance.found_in("The ferry leaves at 9 am."));
    }

    #[test]
    fn during_the_week_means_monday_to_friday() {
        let n = normalised("when do you open during the week");
        assert!(n.contains("monday") && n.contains("friday"), "{n}");
    }

    #[test]
    fn questions_say_what_kind_of_fact_answers_them() {
        assert_eq!(Want::of("Where is the showroom?"), Some(Want::Address));
        assert_eq!(
            Want::of("what's the number for the parts desk"),
            Some(Want::Phone)
        );
        assert_eq!(Want::of("Who runs the body shop?"), Some(Want::Person));
        assert_eq!(
            Want::of("How much is a wheel alignment?"),
            Some(Want::Price)
        );
        assert_eq!(Want::of("How many hybrids do you have?"), Some(Want::Count));
        assert_eq!(Want::of("When do you close on Friday?"), Some(Want::Time));
        assert_eq!(
            Want::of("How long does a detail take?"),
            Some(Want::Duration)
        );
        assert_eq!(Want::of("Do you sell trucks?"), None);
        // A name is not always a person's.
        assert_eq!(Want::of("What is the name of the dealership mascot?"), None);
    }

    #[test]
    fn sentences_are_checked_for_the_kind_of_fact() {
        assert!(Want::Address.found_in("Find us at 48 Quarry Lane, Bexford."));
        assert!(!Want::Address.found_in("Our shuttle drives within 10 miles."));
        assert!(Want::Phone.found_in("Call parts on (555) 301-7788."));
        assert!(!Want::Phone.found_in("Open 9 to 5 since 1998."));
        assert!(Want::Person.found_in("The service manager is Ines Okafor."));
        assert!(!Want::Person.found_in("The service desk opens on Monday."));
        assert!(Want::Price.found_in("Tire rotation is $29."));
        assert!(Want::Time.found_in("We open at 7:30 on weekdays."));
    }

    #[test]
    fn greetings_and_fillers_in_front_are_dropped() {
        assert_eq!(
            without_greeting("Hi there, when do you open on Saturday?"),
            "when do you open on Saturday?"
        );
        assert_eq!(
            without_greeting("um so how much is a battery"),
            "how much is a battery"
        );
        assert_eq!(without_greeting("Hello!"), "Hello!");
        assert_eq!(
            without_greeting("history of the firm"),
            "history of the firm"
        );
    }

    #[test]
    fn spoken_numbers_become_digits() {
        assert_eq!(
            digits_for_words("how much is the twenty twenty one corvo"),
            "how much is the 2021 corvo"
        );
        assert_eq!(digits_for_words("forty-nine dollars"), "49 dollars");
        assert_eq!(
            digits_for_words("do you have three hundred miles"),
            "do you have 300 miles"
        );
        assert_eq!(
            digits_for_words("a two thousand and five model?"),
            "a 2005 model?"
        );
        assert_eq!(
            digits_for_words("is this the one with nineteen ninety nine"),
            "is this the one with 1999"
        );
        assert_eq!(digits_for_words("seven days a week"), "7 days a week");
    }

    #[test]
    fn today_and_tomorrow_are_the_dealerships_days() {
        let saturday = jiff::civil::date(2026, 12, 5);
        assert_eq!(
            normalised_on("Hi, are you open today?", Some(saturday)),
            "are you open today? (saturday, december 5)"
        );
        let q = normalised_on("are you open tomorrow", Some(saturday));
        assert!(q.contains("sunday, december 6"), "{q}");
        assert!(!normalised_on("when do you open", Some(saturday)).contains('('));
        // New Year's Eve rolls over into the next year.
        let q = normalised_on("open tomorrow?", Some(jiff::civil::date(2026, 12, 31)));
        assert!(q.contains("friday, january 1"), "{q}");
    }

    #[test]
    fn named_days_meet_their_dates() {
        assert!(day_synonyms("Are you open on Christmas Day?").contains(&"december 25".into()));
        assert!(day_synonyms("open on Dec. 25th?").contains(&"christmas day".into()));
        assert!(day_synonyms("open on the 4th of July?").contains(&"july 4".into()));
        assert!(day_synonyms("is it open on weekends").contains(&"saturday sunday".into()));
        assert!(day_synonyms("what about new year's eve").contains(&"december 31".into()));
        assert!(day_synonyms("when do you open").is_empty());
    }
}
