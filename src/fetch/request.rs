//! The bytes of fetch's request: the tutorial's GET, plus a User-Agent and any `-H` fields.
//! Pure, so that the exact bytes on the wire are tested on their own.

/// The bytes of a GET for `path` with these header fields: the defaults (Host, User-Agent,
/// Connection: close) in that order, then `extra`. An `extra` field with a default's name
/// replaces that default in place, and one with an empty value is not sent at all (so it
/// removes a default), as curl's `-H` does.
pub fn get_request(path: &str, host: &str, extra: &[(String, String)]) -> Vec<u8> {
    let user_agent = concat!("sockdemo/", env!("CARGO_PKG_VERSION"));
    let mut fields: Vec<(&str, &str)> = vec![
        ("Host", host),
        ("User-Agent", user_agent),
        ("Connection", "close"),
    ];
    for (name, value) in extra {
        match fields
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(field) => *field = (name, value),
            None => fields.push((name, value)),
        }
    }
    let mut request = format!("GET {path} HTTP/1.1\r\n");
    for (name, value) in fields.iter().filter(|(_, value)| !value.is_empty()) {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_the_tutorials_plus_a_user_agent() {
        let request = get_request("/a?b=1", "example.org:8080", &[]);
        let expected = format!(
            "GET /a?b=1 HTTP/1.1\r\nHost: example.org:8080\r\nUser-Agent: sockdemo/{}\r\n\
             Connection: close\r\n\r\n",
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(String::from_utf8(request).unwrap(), expected);
    }

    #[test]
    fn extra_headers_go_last_and_replace_defaults_of_the_same_name() {
        let extra = [
            ("Accept".to_string(), "*/*".to_string()),
            ("user-agent".to_string(), "curl/8".to_string()),
            ("Connection".to_string(), String::new()),
        ];
        let request = get_request("/", "h", &extra);
        let expected = "GET / HTTP/1.1\r\nHost: h\r\nuser-agent: curl/8\r\nAccept: */*\r\n\r\n";
        assert_eq!(String::from_utf8(request).unwrap(), expected);
    }
}
