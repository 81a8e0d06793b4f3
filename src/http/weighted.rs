//! `Accept`-style header lists: `token;q=0.5, other` as (lower-cased token,
//! weight) pairs, for both content negotiations (media type, coding).

/// Each item of the list with its `q` (1 when absent).
pub fn items(header: &str) -> impl Iterator<Item = (String, f32)> + '_ {
    header.split(',').map(|item| {
        let mut parts = item.split(';');
        let token = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (token, q)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn items_carry_their_weight() {
        let items: Vec<_> = super::items("Gzip;q=0.5, br , zstd;level=3;q=0").collect();
        assert_eq!(
            items,
            [
                ("gzip".into(), 0.5),
                ("br".into(), 1.0),
                ("zstd".into(), 0.0)
            ]
        );
    }
}
