//! VADER sentiment (Hutto and Gilbert 2014), a Rust port of the rules of the `vaderSentiment`
//! 3.3.2 package (MIT): lexicon valences, booster and dampener words, negation within three
//! words, "no" as a negator, "least", ALL-CAPS emphasis, the contrastive "but", special idioms,
//! exclamation and question-mark emphasis, and emoji descriptions. The lexicon files
//! (`vader_lexicon.txt`, `emoji_utf8_lexicon.txt`) are read from a folder, never embedded.
//! Checked against the Python package on fixtures/data/vader_reference.json.

use std::collections::HashMap;
use std::path::Path;

const B_INCR: f64 = 0.293;
const B_DECR: f64 = -0.293;
const C_INCR: f64 = 0.733;
const N_SCALAR: f64 = -0.74;

const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

const BOOSTERS_UP: &[&str] = &[
    "absolutely",
    "amazingly",
    "awfully",
    "completely",
    "considerable",
    "considerably",
    "decidedly",
    "deeply",
    "effing",
    "enormous",
    "enormously",
    "entirely",
    "especially",
    "exceptional",
    "exceptionally",
    "extreme",
    "extremely",
    "fabulously",
    "flipping",
    "flippin",
    "frackin",
    "fracking",
    "fricking",
    "frickin",
    "frigging",
    "friggin",
    "fully",
    "fuckin",
    "fucking",
    "fuggin",
    "fugging",
    "greatly",
    "hella",
    "highly",
    "hugely",
    "incredible",
    "incredibly",
    "intensely",
    "major",
    "majorly",
    "more",
    "most",
    "particularly",
    "purely",
    "quite",
    "really",
    "remarkably",
    "so",
    "substantially",
    "thoroughly",
    "total",
    "totally",
    "tremendous",
    "tremendously",
    "uber",
    "unbelievably",
    "unusually",
    "utter",
    "utterly",
    "very",
];

const BOOSTERS_DOWN: &[&str] = &[
    "almost",
    "barely",
    "hardly",
    "just enough",
    "kind of",
    "kinda",
    "kindof",
    "kind-of",
    "less",
    "little",
    "marginal",
    "marginally",
    "occasional",
    "occasionally",
    "partly",
    "scarce",
    "scarcely",
    "slight",
    "slightly",
    "somewhat",
    "sort of",
    "sorta",
    "sortof",
    "sort-of",
];

const SPECIAL_CASES: &[(&str, f64)] = &[
    ("the shit", 3.0),
    ("the bomb", 3.0),
    ("bad ass", 1.5),
    ("badass", 1.5),
    ("bus stop", 0.0),
    ("yeah right", -2.0),
    ("kiss of death", -1.5),
    ("to die for", 3.0),
    ("beating heart", 3.5),
];

fn booster(word: &str) -> Option<f64> {
    if BOOSTERS_UP.contains(&word) {
        Some(B_INCR)
    } else if BOOSTERS_DOWN.contains(&word) {
        Some(B_DECR)
    } else {
        None
    }
}

fn special_case(sequence: &str) -> Option<f64> {
    SPECIAL_CASES
        .iter()
        .find(|(s, _)| *s == sequence)
        .map(|(_, v)| *v)
}

/// Python's `str.isupper()`: at least one cased character and no lower-case one.
fn is_upper(word: &str) -> bool {
    word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase)
}

/// Whether a single word negates (the NEGATE list, or any word containing "n't").
fn negated(word: &str) -> bool {
    NEGATE.contains(&word) || word.contains("n't")
}

/// `score / sqrt(score² + 15)`, clamped to [−1, 1].
fn normalize(score: f64) -> f64 {
    (score / (score * score + 15.0).sqrt()).clamp(-1.0, 1.0)
}

/// VADER's scores of one text. `compound` is not rounded (the Python package rounds it to four
/// decimals and the others to three).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Polarity {
    pub neg: f64,
    pub neu: f64,
    pub pos: f64,
    pub compound: f64,
}

/// The analyser: the word lexicon and the emoji descriptions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Vader {
    lexicon: HashMap<String, f64>,
    emojis: HashMap<char, String>,
}

/// The lexicon folder's file names.
pub const LEXICON_FILE: &str = "vader_lexicon.txt";
pub const EMOJI_FILE: &str = "emoji_utf8_lexicon.txt";

impl Vader {
    /// Reads `vader_lexicon.txt` and `emoji_utf8_lexicon.txt` from a folder; errors name the
    /// file and line.
    pub fn load(folder: &Path) -> Result<Vader, String> {
        let read = |name: &str| {
            let path = folder.join(name);
            std::fs::read_to_string(&path).map_err(|e| {
                format!(
                    "reading {}: {e} (point PROBITY_VADER at the folder of the VADER lexicon)",
                    path.display()
                )
            })
        };
        let lexicon = read(LEXICON_FILE)?;
        let emojis = read(EMOJI_FILE)?;
        Vader::parse(&lexicon, &emojis).map_err(|e| format!("{}: {e}", folder.display()))
    }

    /// Builds the analyser from the two files' text, as the package's `make_lex_dict` and
    /// `make_emoji_dict`: tab-separated, the first two fields of each line.
    pub fn parse(lexicon: &str, emojis: &str) -> Result<Vader, String> {
        let mut vader = Vader::default();
        for (index, line) in lexicon.trim_end_matches('\n').split('\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let mut fields = line.trim().split('\t');
            let (Some(word), Some(measure)) = (fields.next(), fields.next()) else {
                return Err(format!(
                    "{LEXICON_FILE}: line {}: expected word<TAB>valence",
                    index + 1
                ));
            };
            let value: f64 = measure.parse().map_err(|_| {
                format!(
                    "{LEXICON_FILE}: line {}: `{measure}` is not a number",
                    index + 1
                )
            })?;
            vader.lexicon.insert(word.to_string(), value);
        }
        for line in emojis.trim_end_matches('\n').split('\n') {
            let mut fields = line.trim().split('\t');
            let (Some(emoji), Some(description)) = (fields.next(), fields.next()) else {
                continue;
            };
            // The package looks emojis up one character at a time: longer keys never match.
            let mut chars = emoji.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                vader.emojis.insert(c, description.to_string());
            }
        }
        if vader.lexicon.is_empty() {
            return Err(format!("{LEXICON_FILE}: no entries"));
        }
        Ok(vader)
    }

    fn in_lexicon(&self, word: &str) -> bool {
        self.lexicon.contains_key(word)
    }

    /// The scores of a text, as `SentimentIntensityAnalyzer.polarity_scores`.
    pub fn polarity(&self, text: &str) -> Polarity {
        let mut replaced = String::with_capacity(text.len());
        let mut previous_space = true;
        for c in text.chars() {
            if let Some(description) = self.emojis.get(&c) {
                if !previous_space {
                    replaced.push(' ');
                }
                replaced.push_str(description);
                previous_space = false;
            } else {
                replaced.push(c);
                previous_space = c == ' ';
            }
        }
        let text = replaced.trim();
        let words: Vec<String> = text.split_whitespace().map(strip_punctuation).collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let all_caps = words.iter().filter(|w| is_upper(w)).count();
        let cap_differential = words.len() - all_caps;
        let is_cap_diff = 0 < cap_differential && cap_differential < words.len();

        let mut sentiments: Vec<f64> = Vec::with_capacity(words.len());
        for i in 0..words.len() {
            if booster(&lower[i]).is_some()
                || (i + 1 < words.len() && lower[i] == "kind" && lower[i + 1] == "of")
            {
                sentiments.push(0.0);
                continue;
            }
            sentiments.push(self.valence(&words, &lower, i, is_cap_diff));
        }
        but_check(&lower, &mut sentiments);
        score(&sentiments, text)
    }

    fn valence(&self, words: &[String], lower: &[String], i: usize, is_cap_diff: bool) -> f64 {
        let Some(&base) = self.lexicon.get(&lower[i]) else {
            return 0.0;
        };
        let mut valence = base;
        if lower[i] == "no" && i + 1 < words.len() && self.in_lexicon(&lower[i + 1]) {
            valence = 0.0;
        }
        if (i > 0 && lower[i - 1] == "no")
            || (i > 1 && lower[i - 2] == "no")
            || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))
        {
            valence = base * N_SCALAR;
        }
        if is_upper(&words[i]) && is_cap_diff {
            if valence > 0.0 {
                valence += C_INCR;
            } else {
                valence -= C_INCR;
            }
        }
        for start in 0..3 {
            if i > start && !self.in_lexicon(&lower[i - (start + 1)]) {
                let mut s = scalar_inc_dec(&words[i - (start + 1)], valence, is_cap_diff);
                if start == 1 && s != 0.0 {
                    s *= 0.95;
                }
                if start == 2 && s != 0.0 {
                    s *= 0.9;
                }
                valence += s;
                valence = negation_check(valence, lower, start, i);
                if start == 2 {
                    valence = special_idioms_check(valence, lower, i);
                }
            }
        }
        self.least_check(valence, lower, i)
    }

    fn least_check(&self, valence: f64, lower: &[String], i: usize) -> f64 {
        if i > 1 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
            if lower[i - 2] != "at" && lower[i - 2] != "very" {
                return valence * N_SCALAR;
            }
        } else if i > 0 && !self.in_lexicon(&lower[i - 1]) && lower[i - 1] == "least" {
            return valence * N_SCALAR;
        }
        valence
    }
}

/// Leading and trailing ASCII punctuation removed, unless that leaves two characters or fewer
/// (then it was likely an emoticon, kept whole).
fn strip_punctuation(token: &str) -> String {
    let stripped = token.trim_matches(|c: char| c.is_ascii_punctuation());
    if stripped.chars().count() <= 2 {
        token.to_string()
    } else {
        stripped.to_string()
    }
}

fn scalar_inc_dec(word: &str, valence: f64, is_cap_diff: bool) -> f64 {
    let Some(mut scalar) = booster(&word.to_lowercase()) else {
        return 0.0;
    };
    if valence < 0.0 {
        scalar = -scalar;
    }
    if is_upper(word) && is_cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

fn negation_check(valence: f64, lower: &[String], start: usize, i: usize) -> f64 {
    let w = |back: usize| lower[i - back].as_str();
    match start {
        0 if negated(w(1)) => valence * N_SCALAR,
        1 => {
            if w(2) == "never" && (w(1) == "so" || w(1) == "this") {
                valence * 1.25
            } else if w(2) == "without" && w(1) == "doubt" {
                valence
            } else if negated(w(2)) {
                valence * N_SCALAR
            } else {
                valence
            }
        }
        2 => {
            // The package's condition, with Python's precedence of `and` over `or`.
            if (w(3) == "never" && (w(2) == "so" || w(2) == "this"))
                || (w(1) == "so" || w(1) == "this")
            {
                valence * 1.25
            } else if w(3) == "without" && (w(2) == "doubt" || w(1) == "doubt") {
                valence
            } else if negated(w(3)) {
                valence * N_SCALAR
            } else {
                valence
            }
        }
        _ => valence,
    }
}

fn special_idioms_check(mut valence: f64, lower: &[String], i: usize) -> f64 {
    let onezero = format!("{} {}", lower[i - 1], lower[i]);
    let twoonezero = format!("{} {} {}", lower[i - 2], lower[i - 1], lower[i]);
    let twoone = format!("{} {}", lower[i - 2], lower[i - 1]);
    let threetwoone = format!("{} {} {}", lower[i - 3], lower[i - 2], lower[i - 1]);
    let threetwo = format!("{} {}", lower[i - 3], lower[i - 2]);
    for sequence in [&onezero, &twoonezero, &twoone, &threetwoone, &threetwo] {
        if let Some(v) = special_case(sequence) {
            valence = v;
            break;
        }
    }
    if lower.len() - 1 > i {
        if let Some(v) = special_case(&format!("{} {}", lower[i], lower[i + 1])) {
            valence = v;
        }
    }
    if lower.len() - 1 > i + 1 {
        if let Some(v) = special_case(&format!("{} {} {}", lower[i], lower[i + 1], lower[i + 2])) {
            valence = v;
        }
    }
    for n_gram in [&threetwoone, &threetwo, &twoone] {
        if let Some(b) = booster(n_gram) {
            valence += b;
        }
    }
    valence
}

/// The contrastive "but", reproduced with the package's quirk: for each value in turn, the
/// *first* position holding an equal value is the one rescaled (halved before the first "but",
/// × 1.5 after it).
fn but_check(lower: &[String], sentiments: &mut [f64]) {
    let Some(bi) = lower.iter().position(|w| w == "but") else {
        return;
    };
    for k in 0..sentiments.len() {
        let value = sentiments[k];
        let Some(si) = sentiments.iter().position(|v| *v == value) else {
            continue;
        };
        if si < bi {
            sentiments[si] = value * 0.5;
        } else if si > bi {
            sentiments[si] = value * 1.5;
        }
    }
}

fn score(sentiments: &[f64], text: &str) -> Polarity {
    if sentiments.is_empty() {
        return Polarity {
            neg: 0.0,
            neu: 0.0,
            pos: 0.0,
            compound: 0.0,
        };
    }
    let mut sum: f64 = sentiments.iter().sum();
    let exclamations = text.matches('!').count().min(4) as f64 * 0.292;
    let questions = match text.matches('?').count() {
        0 | 1 => 0.0,
        n @ 2..=3 => n as f64 * 0.18,
        _ => 0.96,
    };
    let emphasis = exclamations + questions;
    if sum > 0.0 {
        sum += emphasis;
    } else if sum < 0.0 {
        sum -= emphasis;
    }
    let compound = normalize(sum);
    let mut pos_sum = 0.0;
    let mut neg_sum = 0.0;
    let mut neutral = 0.0;
    for &s in sentiments {
        if s > 0.0 {
            pos_sum += s + 1.0;
        }
        if s < 0.0 {
            neg_sum += s - 1.0;
        }
        if s == 0.0 {
            neutral += 1.0;
        }
    }
    if pos_sum > neg_sum.abs() {
        pos_sum += emphasis;
    } else if pos_sum < neg_sum.abs() {
        neg_sum -= emphasis;
    }
    let total = pos_sum + neg_sum.abs() + neutral;
    Polarity {
        neg: (neg_sum / total).abs(),
        neu: (neutral / total).abs(),
        pos: (pos_sum / total).abs(),
        compound,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tiny() -> Vader {
        Vader::parse(
            "good\t1.9\t0.9\t[]\nbad\t-2.5\t0.5\t[]\nno\t-1.2\t0.1\t[]\nhorrible\t-2.5\t0.6\t[]\n",
            "😀\tgrinning face\n",
        )
        .unwrap()
    }

    fn check(text: &str, expect: f64) {
        let got = tiny().polarity(text).compound;
        assert!((got - expect).abs() < 1e-12, "{text}: {got} vs {expect}");
    }

    #[test]
    fn rules_by_hand() {
        // One word of valence 1.9: 1.9 / sqrt(1.9² + 15).
        check("good", 1.9 / (1.9f64 * 1.9 + 15.0).sqrt());
        // Negation within three words scales by −0.74.
        let negated: f64 = 1.9 * N_SCALAR;
        check("not good", negated / (negated * negated + 15.0).sqrt());
        // A booster adds 0.293 in the direction of the valence.
        let boosted: f64 = 1.9 + B_INCR;
        check("very good", boosted / (boosted * boosted + 15.0).sqrt());
        // Two exclamation marks add 2 × 0.292.
        let loud: f64 = 1.9 + 2.0 * 0.292;
        check("good!!", loud / (loud * loud + 15.0).sqrt());
        // Nothing in the lexicon: 0.
        check("the table", 0.0);
        check("", 0.0);
    }

    #[test]
    fn but_halves_what_comes_before() {
        let sum: f64 = 1.9 * 0.5 - 2.5 * 1.5;
        check("good but bad", sum / (sum * sum + 15.0).sqrt());
    }

    #[test]
    fn emoticons_keep_their_punctuation() {
        assert_eq!(strip_punctuation(":)"), ":)");
        assert_eq!(strip_punctuation("good!"), "good");
        assert_eq!(strip_punctuation("'ok'"), "'ok'");
    }

    #[test]
    fn malformed_lexicons_name_the_line() {
        assert_eq!(
            Vader::parse("good\n", "").unwrap_err(),
            "vader_lexicon.txt: line 1: expected word<TAB>valence"
        );
        assert_eq!(
            Vader::parse("good\tx\n", "").unwrap_err(),
            "vader_lexicon.txt: line 1: `x` is not a number"
        );
    }
}
