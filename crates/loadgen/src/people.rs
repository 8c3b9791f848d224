//! Tables that give the generated customers realistic names, time zones and locales.

/// IANA time zones with a weight and the locale of customers living there.
///
/// The weights are an estimate of where an international online business finds its
/// customers, not a statistic. The list includes zones with half-hour and 45-minute offsets
/// (Asia/Kolkata, Asia/Kathmandu, America/St_Johns, Australia/Adelaide) and zones of both
/// hemispheres with and without daylight-saving time, so the window rules meet every kind
/// of local time.
pub const ZONES: &[((&str, &str), u32)] = &[
    (("America/New_York", "en-US"), 10),
    (("America/Chicago", "en-US"), 6),
    (("America/Denver", "en-US"), 2),
    (("America/Los_Angeles", "en-US"), 7),
    (("America/Toronto", "en-CA"), 3),
    (("America/St_Johns", "en-CA"), 1),
    (("America/Mexico_City", "es-MX"), 4),
    (("America/Sao_Paulo", "pt-BR"), 5),
    (("America/Argentina/Buenos_Aires", "es-AR"), 2),
    (("Europe/London", "en-GB"), 8),
    (("Europe/Berlin", "de-DE"), 8),
    (("Europe/Paris", "fr-FR"), 6),
    (("Europe/Madrid", "es-ES"), 3),
    (("Europe/Rome", "it-IT"), 3),
    (("Europe/Warsaw", "pl-PL"), 2),
    (("Europe/Istanbul", "tr-TR"), 2),
    (("Africa/Lagos", "en-NG"), 2),
    (("Africa/Johannesburg", "en-ZA"), 2),
    (("Asia/Dubai", "ar-AE"), 2),
    (("Asia/Tehran", "fa-IR"), 1),
    (("Asia/Kolkata", "en-IN"), 8),
    (("Asia/Kathmandu", "ne-NP"), 1),
    (("Asia/Jakarta", "id-ID"), 3),
    (("Asia/Singapore", "en-SG"), 2),
    (("Asia/Shanghai", "zh-CN"), 6),
    (("Asia/Manila", "en-PH"), 2),
    (("Asia/Tokyo", "ja-JP"), 5),
    (("Australia/Adelaide", "en-AU"), 1),
    (("Australia/Sydney", "en-AU"), 3),
    (("Pacific/Auckland", "en-NZ"), 1),
];

/// Given names, ASCII only so that addresses built from them stay valid.
pub const GIVEN_NAMES: &[&str] = &[
    "Ada", "Aiko", "Amara", "Ana", "Arjun", "Ben", "Carla", "Chen", "Dara", "David", "Elena",
    "Emeka", "Fatima", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jana", "Jonas", "Kofi",
    "Lars", "Lea", "Liam", "Lucia", "Maya", "Mei", "Nadia", "Noah", "Olga", "Omar", "Priya",
    "Rafael", "Rosa", "Sami", "Sara", "Tomas", "Yuki", "Zoe",
];

/// Family names, ASCII only.
pub const FAMILY_NAMES: &[&str] = &[
    "Adeyemi", "Bauer", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Haddad", "Ito",
    "Jensen", "Kowalski", "Kumar", "Lee", "Martin", "Moreau", "Nakamura", "Novak", "Okafor",
    "Patel", "Quinn", "Rossi", "Santos", "Schmidt", "Silva", "Smith", "Tanaka", "Wang", "Weber",
    "Yilmaz", "Zhang",
];

/// Values of the free-form `plan` column, which tact keeps as a template field.
pub const PLANS: &[(&str, u32)] = &[("free", 50), ("basic", 30), ("pro", 15), ("enterprise", 5)];
