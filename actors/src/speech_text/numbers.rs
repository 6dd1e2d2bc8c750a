//! Numbers as English words: cardinals, ordinals, years, decimals and digit strings.

/// Number words below twenty, by value.
pub const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
/// Tens as words, by value / 10 ("" below twenty).
pub const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [&str; 7] = [
    "",
    "thousand",
    "million",
    "billion",
    "trillion",
    "quadrillion",
    "quintillion",
];

/// Below a hundred: "seven", "forty-two".
fn below_hundred(n: u64) -> String {
    if n < 20 {
        ONES[n as usize].to_owned()
    } else if n.is_multiple_of(10) {
        TENS[(n / 10) as usize].to_owned()
    } else {
        format!("{}-{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize])
    }
}

/// Below a thousand: "nine hundred five".
fn below_thousand(n: u64) -> String {
    match (n / 100, n % 100) {
        (0, r) => below_hundred(r),
        (h, 0) => format!("{} hundred", ONES[h as usize]),
        (h, r) => format!("{} hundred {}", ONES[h as usize], below_hundred(r)),
    }
}

/// A cardinal number: 27900 → "twenty-seven thousand nine hundred".
pub fn cardinal(n: u64) -> String {
    if n == 0 {
        return "zero".into();
    }
    let mut groups = Vec::new();
    let mut rest = n;
    while rest > 0 {
        groups.push(rest % 1000);
        rest /= 1000;
    }
    let mut words = Vec::new();
    for (scale, &group) in groups.iter().enumerate().rev() {
        if group == 0 {
            continue;
        }
        words.push(below_thousand(group));
        if scale > 0 {
            words.push(SCALES[scale].to_owned());
        }
    }
    words.join(" ")
}

/// An ordinal number: 25 → "twenty-fifth".
pub fn ordinal(n: u64) -> String {
    let words = cardinal(n);
    // Only the last word changes: "twenty-one" → "twenty-first".
    let (head, last) = match words.rfind([' ', '-']) {
        Some(i) => words.split_at(i + 1),
        None => ("", words.as_str()),
    };
    let last = match last {
        "one" => "first".to_owned(),
        "two" => "second".to_owned(),
        "three" => "third".to_owned(),
        "five" => "fifth".to_owned(),
        "eight" => "eighth".to_owned(),
        "nine" => "ninth".to_owned(),
        "twelve" => "twelfth".to_owned(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

/// A year as people say it: 2024 → "twenty twenty-four", 2005 → "two thousand five",
/// 1999 → "nineteen ninety-nine", 1900 → "nineteen hundred".
pub fn year(n: u64) -> String {
    let (high, low) = (n / 100, n % 100);
    if !(10..100).contains(&high) {
        return cardinal(n);
    }
    match low {
        0 if high % 10 == 0 => cardinal(n),
        0 => format!("{} hundred", below_hundred(high)),
        1..=9 if high % 10 == 0 => cardinal(n),
        1..=9 => format!("{} oh {}", below_hundred(high), ONES[low as usize]),
        _ => format!("{} {}", below_hundred(high), below_hundred(low)),
    }
}

/// A number read in pairs, as house numbers are: 1420 → "fourteen twenty", 305 →
/// "three oh five"; other lengths as a cardinal.
pub fn pairs(digits: &str) -> String {
    let Ok(n) = digits.parse::<u64>() else {
        return spell_digits(digits);
    };
    if digits.starts_with('0') {
        return spell_digits(digits);
    }
    match digits.len() {
        3 if n % 100 != 0 => {
            let low = n % 100;
            let low = if low < 10 {
                format!("oh {}", ONES[low as usize])
            } else {
                below_hundred(low)
            };
            format!("{} {low}", ONES[(n / 100) as usize])
        }
        4 if n % 100 != 0 && n % 1000 >= 100 => year(n),
        _ => cardinal(n),
    }
}

/// Digits one by one: "4567" → "four five six seven".
pub fn spell_digits(digits: &str) -> String {
    digits
        .chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| ONES[d as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// A plain number as written ("27,900", "3.5", "0.9"); `None` if it is not one.
pub fn number(text: &str) -> Option<String> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text, None),
    };
    if int.is_empty() && frac.is_none() {
        return None;
    }
    let int_digits = grouped_digits(int)?;
    let mut out = if int_digits.is_empty() {
        "zero".to_owned()
    } else {
        cardinal(int_digits.parse().ok()?)
    };
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        out.push_str(" point ");
        out.push_str(&spell_digits(frac));
    }
    Some(out)
}

/// "27,900" → "27900"; `None` unless it is digits with well-placed thousands commas
/// (at most 18 digits).
pub fn grouped_digits(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some(String::new());
    }
    let groups: Vec<&str> = text.split(',').collect();
    let ok = groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()))
        && !groups[0].is_empty()
        && (groups.len() == 1
            || (groups[0].len() <= 3 && groups[1..].iter().all(|g| g.len() == 3)));
    let digits: String = groups.concat();
    (ok && digits.len() <= 18).then_some(digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cardinals() {
        assert_eq!(cardinal(0), "zero");
        assert_eq!(cardinal(13), "thirteen");
        assert_eq!(cardinal(40), "forty");
        assert_eq!(cardinal(199), "one hundred ninety-nine");
        assert_eq!(cardinal(27_900), "twenty-seven thousand nine hundred");
        assert_eq!(cardinal(1_000_005), "one million five");
        assert_eq!(cardinal(300_000_000), "three hundred million");
    }

    #[test]
    fn ordinals() {
        assert_eq!(ordinal(1), "first");
        assert_eq!(ordinal(2), "second");
        assert_eq!(ordinal(12), "twelfth");
        assert_eq!(ordinal(20), "twentieth");
        assert_eq!(ordinal(25), "twenty-fifth");
        assert_eq!(ordinal(31), "thirty-first");
        assert_eq!(ordinal(100), "one hundredth");
    }

    #[test]
    fn years() {
        assert_eq!(year(2024), "twenty twenty-four");
        assert_eq!(year(2010), "twenty ten");
        assert_eq!(year(2005), "two thousand five");
        assert_eq!(year(2000), "two thousand");
        assert_eq!(year(1999), "nineteen ninety-nine");
        assert_eq!(year(1900), "nineteen hundred");
        assert_eq!(year(1908), "nineteen oh eight");
    }

    #[test]
    fn house_numbers_and_plain_numbers() {
        assert_eq!(pairs("1420"), "fourteen twenty");
        assert_eq!(pairs("305"), "three oh five");
        assert_eq!(pairs("12"), "twelve");
        assert_eq!(pairs("1000"), "one thousand");
        assert_eq!(
            number("27,900").as_deref(),
            Some("twenty-seven thousand nine hundred")
        );
        assert_eq!(number("3.9").as_deref(), Some("three point nine"));
        assert_eq!(number("2,79"), None);
        assert_eq!(number("1.2.3"), None);
        assert_eq!(spell_digits("0199"), "zero one nine nine");
    }
}
