//! The route table: method + path → route id and raw parameter values.
//!
//! Owns the Hyper-Express (uWebSockets) matching rules: exact, case-sensitive segments; a `:name`
//! segment matches one non-empty segment; a trailing `*` matches one or more remaining segments;
//! static beats parameter beats wildcard at every segment, whatever the registration order (with
//! backtracking); a method route beats an `ANY` route; no implicit HEAD → GET. It does not know
//! about middlewares or handlers: the JS layer maps the route id to those.
//!
//! A small segment trie rather than `matchit`: matchit refuses a parameter and a catch-all at the
//! same position (`/p/:id` beside `/p/*`), which Hyper-Express apps rely on.

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

#[derive(Default)]
struct Node {
  statics: HashMap<String, Node>,
  param: Option<Box<Node>>,
  wildcard: Option<RouteInfo>,
  route: Option<RouteInfo>,
}

enum Seg<'a> {
  Static(&'a str),
  Param,
  Wildcard,
}

fn parse(pattern: &str) -> Result<Vec<Seg<'_>>, String> {
  let body = pattern
    .strip_prefix('/')
    .ok_or_else(|| format!("route pattern must start with '/': {pattern:?}"))?;
  let parts: Vec<&str> = body.split('/').collect();
  let last = parts.len() - 1;
  parts
    .iter()
    .enumerate()
    .map(|(i, p)| match *p {
      "*" if i == last => Ok(Seg::Wildcard),
      "*" => Err(format!(
        "a '*' wildcard must be the last segment: {pattern:?}"
      )),
      p if p.len() > 1 && p.starts_with(':') => Ok(Seg::Param),
      p => Ok(Seg::Static(p)),
    })
    .collect()
}

impl Node {
  fn insert(&mut self, segs: &[Seg<'_>], info: RouteInfo) -> Result<(), ()> {
    let Some((first, rest)) = segs.split_first() else {
      return match self.route {
        Some(_) => Err(()),
        None => {
          self.route = Some(info);
          Ok(())
        }
      };
    };
    match first {
      Seg::Static(s) => self
        .statics
        .entry((*s).to_string())
        .or_default()
        .insert(rest, info),
      Seg::Param => self
        .param
        .get_or_insert_with(Box::default)
        .insert(rest, info),
      Seg::Wildcard => match self.wildcard {
        Some(_) => Err(()),
        None => {
          self.wildcard = Some(info);
          Ok(())
        }
      },
    }
  }

  /// Matches `path[pos..]` (the remaining segments; `pos` is just after a `/`).
  fn find<'p>(&self, path: &'p str, pos: usize, params: &mut Vec<&'p str>) -> Option<RouteInfo> {
    if pos > path.len() {
      return self.route;
    }
    let rest = &path[pos..];
    let (seg, next) = match rest.find('/') {
      Some(i) => (&rest[..i], pos + i + 1),
      None => (rest, path.len() + 1),
    };
    if let Some(child) = self.statics.get(seg) {
      if let Some(found) = child.find(path, next, params) {
        return Some(found);
      }
    }
    if let Some(child) = self.param.as_deref().filter(|_| !seg.is_empty()) {
      params.push(seg);
      if let Some(found) = child.find(path, next, params) {
        return Some(found);
      }
      params.pop();
    }
    if let Some(info) = self.wildcard {
      params.push(rest);
      return Some(info);
    }
    None
  }
}

/// Compiled routes, one trie per method plus one for `ANY`.
#[derive(Default)]
pub struct RouteTable {
  by_method: HashMap<String, Node>,
  any: Node,
}

/// A successful lookup: the route and its parameter values in pattern order (raw, not decoded;
/// a wildcard's value comes last).
pub struct Found<'p> {
  pub route: RouteInfo,
  pub params: Vec<&'p str>,
}

impl RouteTable {
  /// Builds the table.
  ///
  /// # Errors
  /// A message naming the pattern that is invalid or registered twice for one method.
  pub fn build(routes: &[RouteSpec]) -> Result<RouteTable, String> {
    let mut table = RouteTable::default();
    for r in routes {
      let pattern = if r.pattern.starts_with('*') {
        format!("/{}", r.pattern)
      } else {
        r.pattern.clone()
      };
      let segs = parse(&pattern)?;
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
      tree.insert(&segs, info).map_err(|()| {
        format!(
          "duplicate routes are not allowed: {} {:?}",
          r.method, r.pattern
        )
      })?;
    }
    Ok(table)
  }

  /// Finds the route for `method` and raw `path` (no query string).
  pub fn find<'p>(&self, method: &str, path: &'p str) -> Option<Found<'p>> {
    let start = usize::from(path.starts_with('/'));
    let mut params = Vec::new();
    if let Some(tree) = self.by_method.get(method) {
      if let Some(route) = tree.find(path, start, &mut params) {
        return Some(Found { route, params });
      }
      params.clear();
    }
    let route = self.any.find(path, start, &mut params)?;
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
  fn invalid_and_duplicate_patterns_are_refused() {
    assert!(RouteTable::build(&[spec(0, "GET", "/a/*/b")]).is_err());
    assert!(RouteTable::build(&[spec(0, "GET", "nope")]).is_err());
    assert!(RouteTable::build(&[spec(0, "GET", "/a/:x"), spec(1, "GET", "/a/:y")]).is_err());
    assert!(RouteTable::build(&[spec(0, "GET", "/a"), spec(1, "POST", "/a")]).is_ok());
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
    let t = RouteTable::build(&[
      spec(0, "ANY", "/*"),
      spec(1, "GET", "/f/*"),
      spec(2, "ANY", "*"),
    ]);
    assert!(t.is_err(), "'*' is '/*'");
    let t = RouteTable::build(&[spec(0, "ANY", "/*"), spec(1, "GET", "/f/*")]).unwrap();
    assert_eq!(find(&t, "GET", "/x/y").map(|f| f.0), Some(0));
    assert_eq!(find(&t, "GET", "/").map(|f| f.0), Some(0));
    assert_eq!(find(&t, "GET", "/f/").map(|f| f.0), Some(1));
    assert_eq!(find(&t, "GET", "/f").map(|f| f.0), Some(0));
  }
}

#[cfg(test)]
mod more_tests {
  use super::*;

  #[test]
  fn backtracks_from_a_static_dead_end_to_a_param() {
    let t = RouteTable::build(&[
      RouteSpec {
        id: 0,
        method: "GET".into(),
        pattern: "/a/b/c".into(),
        max_body_length: 0,
      },
      RouteSpec {
        id: 1,
        method: "GET".into(),
        pattern: "/a/:x/d".into(),
        max_body_length: 0,
      },
      RouteSpec {
        id: 2,
        method: "GET".into(),
        pattern: "/".into(),
        max_body_length: 0,
      },
      RouteSpec {
        id: 3,
        method: "GET".into(),
        pattern: "/t/".into(),
        max_body_length: 0,
      },
    ])
    .unwrap();
    let f = t.find("GET", "/a/b/d").unwrap();
    assert_eq!((f.route.id, f.params), (1, vec!["b"]));
    assert_eq!(t.find("GET", "/").map(|f| f.route.id), Some(2));
    assert_eq!(t.find("GET", "/t/").map(|f| f.route.id), Some(3));
    assert!(t.find("GET", "/t").is_none());
    assert!(t.find("GET", "/a/b").is_none());
  }
}
