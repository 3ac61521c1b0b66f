//! The route table: method + path → route id and raw parameter values.
//!
//! Owns the translation of Hyper-Express patterns (`/users/:id`, `/files/*`) into `matchit` routes
//! and the lookup rules: exact, case-sensitive segments; static beats parameter beats wildcard; a
//! method route beats an `ANY` route; no implicit HEAD → GET. It does not know about middlewares or
//! handlers: the JS layer maps the route id to those.

use std::collections::HashMap;

/// One route as the JS layer registers it.
#[derive(Debug, Clone)]
pub struct RouteSpec {
  /// Index of the route in the JS layer's route array.
  pub id: i32,
  /// Uppercase method, or `ANY`.
  pub method: String,
  /// Hyper-Express pattern.
  pub pattern: String,
  /// Body limit for this route in bytes (0 = the server default).
  pub max_body_length: u64,
}

/// What a route lookup yields.
#[derive(Debug, Clone, Copy)]
pub struct RouteInfo {
  pub id: i32,
  pub max_body_length: u64,
}

/// Compiled routes, one `matchit` tree per method plus one for `ANY`.
#[derive(Default)]
pub struct RouteTable {
  by_method: HashMap<String, matchit::Router<RouteInfo>>,
  any: matchit::Router<RouteInfo>,
}

/// A successful lookup: the route and its parameter values in pattern order (raw, not decoded).
pub struct Found<'p> {
  pub route: RouteInfo,
  pub params: Vec<&'p str>,
}

/// Converts a Hyper-Express pattern into matchit syntax. Parameters get positional names
/// (`p0`, `p1`, ...) so routes sharing a prefix never conflict over parameter names; the JS layer
/// keeps the real names and receives the values in order.
///
/// # Errors
/// A message when the pattern cannot be expressed (e.g. `*` not at the end).
pub fn to_matchit(pattern: &str) -> Result<String, String> {
  let pattern = if pattern.starts_with('*') {
    format!("/{pattern}")
  } else {
    pattern.to_string()
  };
  if !pattern.starts_with('/') {
    return Err(format!("route pattern must start with '/': {pattern:?}"));
  }
  let segments: Vec<&str> = pattern.split('/').collect();
  let mut out = String::with_capacity(pattern.len() + 8);
  let mut n = 0;
  for (i, seg) in segments.iter().enumerate() {
    if i > 0 {
      out.push('/');
    }
    if seg.len() > 1 && seg.starts_with(':') {
      out.push_str(&format!("{{p{n}}}"));
      n += 1;
    } else if *seg == "*" {
      if i != segments.len() - 1 {
        return Err(format!(
          "a '*' wildcard must be the last segment: {pattern:?}"
        ));
      }
      out.push_str(&format!("{{*p{n}}}"));
      n += 1;
    } else {
      for c in seg.chars() {
        match c {
          '{' => out.push_str("{{"),
          '}' => out.push_str("}}"),
          _ => out.push(c),
        }
      }
    }
  }
  Ok(out)
}

impl RouteTable {
  /// Builds the table.
  ///
  /// # Errors
  /// A message naming the pattern that could not be compiled or conflicts with another.
  pub fn build(routes: &[RouteSpec]) -> Result<RouteTable, String> {
    let mut table = RouteTable::default();
    for r in routes {
      let path = to_matchit(&r.pattern)?;
      let info = RouteInfo {
        id: r.id,
        max_body_length: r.max_body_length,
      };
      let method = r.method.to_ascii_uppercase();
      let tree = if method == "ANY" {
        &mut table.any
      } else {
        table.by_method.entry(method).or_default()
      };
      // `/files/*` also matches `/files/` (empty wildcard), unless that path has its own route.
      let bare = path
        .rfind("/{*")
        .filter(|_| path.ends_with('}'))
        .map(|i| path[..=i].to_string());
      tree
        .insert(path, info)
        .map_err(|e| format!("cannot register route {} {:?}: {e}", r.method, r.pattern))?;
      if let Some(bare) = bare {
        let _ = tree.insert(bare, info);
      }
    }
    Ok(table)
  }

  /// Finds the route for `method` and raw `path` (no query string).
  pub fn find<'p>(&self, method: &str, path: &'p str) -> Option<Found<'p>> {
    let hit = self
      .by_method
      .get(method)
      .and_then(|t| t.at(path).ok())
      .or_else(|| self.any.at(path).ok())?;
    let route = *hit.value;
    let params = hit.params.iter().map(|(_, v)| v).collect();
    Some(Found { route, params })
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  fn spec(id: i32, method: &str, pattern: &str) -> RouteSpec {
    RouteSpec {
      id,
      method: method.into(),
      pattern: pattern.into(),
      max_body_length: 0,
    }
  }

  fn find(t: &RouteTable, m: &str, p: &str) -> Option<(i32, Vec<String>)> {
    t.find(m, p)
      .map(|f| (f.route.id, f.params.iter().map(|s| s.to_string()).collect()))
  }

  #[test]
  fn converts_patterns() {
    assert_eq!(to_matchit("/users/:id").unwrap(), "/users/{p0}");
    assert_eq!(to_matchit("/a/:x/b/:y").unwrap(), "/a/{p0}/b/{p1}");
    assert_eq!(to_matchit("/files/*").unwrap(), "/files/{*p0}");
    assert_eq!(to_matchit("*").unwrap(), "/{*p0}");
    assert_eq!(to_matchit("/x{y}").unwrap(), "/x{{y}}");
    assert!(to_matchit("/a/*/b").is_err());
    assert!(to_matchit("nope").is_err());
  }

  #[test]
  fn params_are_exact_raw_segments() {
    let t =
      RouteTable::build(&[spec(0, "GET", "/users/:id"), spec(1, "GET", "/a/:x/b/:y")]).unwrap();
    assert_eq!(find(&t, "GET", "/users/42"), Some((0, vec!["42".into()])));
    assert_eq!(
      find(&t, "GET", "/users/a%20b"),
      Some((0, vec!["a%20b".into()]))
    );
    assert_eq!(find(&t, "GET", "/users/42/"), None);
    assert_eq!(find(&t, "GET", "/USERS/42"), None);
    assert_eq!(find(&t, "GET", "/users"), None);
    assert_eq!(
      find(&t, "GET", "/a/1/b/2"),
      Some((1, vec!["1".into(), "2".into()]))
    );
    assert_eq!(find(&t, "GET", "/a//b/2"), None);
  }

  #[test]
  fn static_beats_param_beats_wildcard_whatever_the_order() {
    let t = RouteTable::build(&[
      spec(0, "GET", "/p/*"),
      spec(1, "GET", "/p/:id"),
      spec(2, "GET", "/p/static"),
    ])
    .unwrap();
    assert_eq!(find(&t, "GET", "/p/static").map(|f| f.0), Some(2));
    assert_eq!(find(&t, "GET", "/p/other").map(|f| f.0), Some(1));
    assert_eq!(find(&t, "GET", "/p/a/b"), Some((0, vec!["a/b".into()])));
    assert_eq!(find(&t, "GET", "/p"), None);
  }

  #[test]
  fn method_route_beats_any_and_head_is_not_get() {
    let t = RouteTable::build(&[
      spec(0, "GET", "/m"),
      spec(1, "ANY", "/m"),
      spec(2, "GET", "/g"),
    ])
    .unwrap();
    assert_eq!(find(&t, "GET", "/m").map(|f| f.0), Some(0));
    assert_eq!(find(&t, "POST", "/m").map(|f| f.0), Some(1));
    assert_eq!(find(&t, "DELETE", "/m").map(|f| f.0), Some(1));
    assert_eq!(find(&t, "HEAD", "/g"), None);
  }

  #[test]
  fn routes_with_different_param_names_share_a_prefix() {
    let t =
      RouteTable::build(&[spec(0, "GET", "/u/:id"), spec(1, "GET", "/u/:uid/posts")]).unwrap();
    assert_eq!(find(&t, "GET", "/u/7/posts"), Some((1, vec!["7".into()])));
    assert_eq!(find(&t, "GET", "/u/7"), Some((0, vec!["7".into()])));
  }

  #[test]
  fn catch_all_root() {
    let t = RouteTable::build(&[spec(0, "ANY", "/*"), spec(1, "GET", "/f/*")]).unwrap();
    assert_eq!(find(&t, "GET", "/x/y").map(|f| f.0), Some(0));
    assert_eq!(find(&t, "GET", "/").map(|f| f.0), Some(0));
    assert_eq!(find(&t, "GET", "/f/").map(|f| f.0), Some(1));
  }
}
