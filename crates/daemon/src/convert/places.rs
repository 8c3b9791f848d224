//! Countries as the Online Retail data set names them, with a time zone and a locale.

use chrono_tz::Tz;

/// A country's time zone and locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// IANA time zone. Countries with several zones get their most populous one.
    pub time_zone: Tz,
    /// BCP 47 language tag.
    pub locale: &'static str,
}

/// Looks up a country by the name the data set uses, such as `EIRE` or `RSA`.
///
/// Returns `None` for names that are not a country (`Unspecified`, `European Community`)
/// and for names not in the table.
pub fn place_of(country: &str) -> Option<Place> {
    use chrono_tz::{Africa, America, Asia, Atlantic, Australia, Europe};
    let (time_zone, locale) = match country {
        "Australia" => (Australia::Sydney, "en-AU"),
        "Austria" => (Europe::Vienna, "de-AT"),
        "Bahrain" => (Asia::Bahrain, "ar-BH"),
        "Belgium" => (Europe::Brussels, "nl-BE"),
        "Brazil" => (America::Sao_Paulo, "pt-BR"),
        "Canada" => (America::Toronto, "en-CA"),
        "Channel Islands" => (Europe::Jersey, "en-GB"),
        "Cyprus" => (Asia::Nicosia, "el-CY"),
        "Czech Republic" => (Europe::Prague, "cs-CZ"),
        "Denmark" => (Europe::Copenhagen, "da-DK"),
        "EIRE" => (Europe::Dublin, "en-IE"),
        "Finland" => (Europe::Helsinki, "fi-FI"),
        "France" => (Europe::Paris, "fr-FR"),
        "Germany" => (Europe::Berlin, "de-DE"),
        "Greece" => (Europe::Athens, "el-GR"),
        "Hong Kong" => (Asia::Hong_Kong, "zh-HK"),
        "Iceland" => (Atlantic::Reykjavik, "is-IS"),
        "Israel" => (Asia::Jerusalem, "he-IL"),
        "Italy" => (Europe::Rome, "it-IT"),
        "Japan" => (Asia::Tokyo, "ja-JP"),
        "Lebanon" => (Asia::Beirut, "ar-LB"),
        "Lithuania" => (Europe::Vilnius, "lt-LT"),
        "Malta" => (Europe::Malta, "mt-MT"),
        "Netherlands" => (Europe::Amsterdam, "nl-NL"),
        "Norway" => (Europe::Oslo, "nb-NO"),
        "Poland" => (Europe::Warsaw, "pl-PL"),
        "Portugal" => (Europe::Lisbon, "pt-PT"),
        "RSA" => (Africa::Johannesburg, "en-ZA"),
        "Saudi Arabia" => (Asia::Riyadh, "ar-SA"),
        "Singapore" => (Asia::Singapore, "en-SG"),
        "Spain" => (Europe::Madrid, "es-ES"),
        "Sweden" => (Europe::Stockholm, "sv-SE"),
        "Switzerland" => (Europe::Zurich, "de-CH"),
        "USA" => (America::New_York, "en-US"),
        "United Arab Emirates" => (Asia::Dubai, "ar-AE"),
        "United Kingdom" => (Europe::London, "en-GB"),
        _ => return None,
    };
    Some(Place { time_zone, locale })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_of_known_and_unknown() {
        let eire = place_of("EIRE").unwrap();
        assert_eq!(eire.time_zone, chrono_tz::Europe::Dublin);
        assert_eq!(eire.locale, "en-IE");
        assert_eq!(place_of("Unspecified"), None);
        assert_eq!(place_of("European Community"), None);
    }
}
