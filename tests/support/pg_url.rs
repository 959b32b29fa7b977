//! PostgreSQL URL handling shared by the integration tests and the
//! benchmark (each includes this file with `#[path]`), which both create a
//! database of their own next to the admin URL's.

/// `admin` with its database name replaced by `name`, query kept.
pub fn with_database(admin: &str, name: &str) -> String {
    let (base, query) = match admin.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_start = base[authority_start..]
        .rfind('@')
        .map_or(authority_start, |i| authority_start + i + 1);
    let server = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn with_database_replaces_the_name() {
        let cases = [
            (
                "postgres://postgres@127.0.0.1:5432/postgres",
                "postgres://postgres@127.0.0.1:5432/t",
            ),
            (
                "postgres://u:p/w@h/db?sslmode=disable",
                "postgres://u:p/w@h/t?sslmode=disable",
            ),
            ("postgres://h:5432", "postgres://h:5432/t"),
        ];
        for (admin, want) in cases {
            assert_eq!(super::with_database(admin, "t"), want);
        }
    }
}
