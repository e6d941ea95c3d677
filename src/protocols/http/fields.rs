//! PHP-style nested fields: `a[]=1&a[]=2` is a list, `user[name]=x` a map, as PHP's
//! `parse_str` (and so Workerman's `$request->get()` / `post()`) reads them.

/// A query or form field read the PHP way ([`Request::get_field`],
/// [`Request::post_field`]): text, a list (`a[]=1&a[]=2`, or keys `0, 1, ...` in order), or a
/// map (`user[name]=x&user[age]=7`), nested as deep as the names say (at most 64 levels, PHP's
/// `max_input_nesting_level`; deeper fields are dropped).
///
/// [`Request::get_field`]: crate::protocols::http::Request::get_field
/// [`Request::post_field`]: crate::protocols::http::Request::post_field
///
/// ```
/// use workerman::protocols::http::Request;
///
/// let request = Request::parse(
///     b"GET /?tag[]=a&tag[]=b&user[name]=ann&user[langs][]=php&user[langs][]=rust HTTP/1.1\r\nHost: h\r\n\r\n",
/// )?;
/// let tags = request.get_field("tag").unwrap();
/// assert_eq!(tags.as_list().unwrap().len(), 2);
/// assert_eq!(tags.get("1").and_then(|t| t.as_str()), Some("b"));
/// let user = request.get_field("user").unwrap();
/// assert_eq!(user.get("name").and_then(|n| n.as_str()), Some("ann"));
/// assert_eq!(user.get("langs").and_then(|l| l.get("0")).and_then(|l| l.as_str()), Some("php"));
/// assert_eq!(request.get("user[name]"), Some("ann")); // flat access stays
/// # Ok::<(), workerman::protocols::http::HttpError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// A plain value.
    Text(String),
    /// Values keyed `0, 1, 2, ...` in order (PHP's list).
    List(Vec<Field>),
    /// Values by key, in the order first given (PHP's array with string keys).
    Map(Vec<(String, Field)>),
}

/// PHP's `max_input_nesting_level`.
const MAX_DEPTH: usize = 64;

impl Field {
    /// The text of a plain value; `None` for a list or map.
    ///
    /// ```
    /// # use workerman::protocols::http::Field;
    /// assert_eq!(Field::Text("x".into()).as_str(), Some("x"));
    /// ```
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The items of a list; `None` for text or a map.
    ///
    /// ```
    /// # use workerman::protocols::http::Field;
    /// let list = Field::List(vec![Field::Text("a".into())]);
    /// assert_eq!(list.as_list().map(|items| items.len()), Some(1));
    /// ```
    pub fn as_list(&self) -> Option<&[Field]> {
        match self {
            Field::List(items) => Some(items),
            _ => None,
        }
    }

    /// The entries of a map; `None` for text or a list.
    ///
    /// ```
    /// # use workerman::protocols::http::Field;
    /// let map = Field::Map(vec![("k".into(), Field::Text("v".into()))]);
    /// assert_eq!(map.as_map().map(|entries| entries.len()), Some(1));
    /// ```
    pub fn as_map(&self) -> Option<&[(String, Field)]> {
        match self {
            Field::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// A member by key: a map's entry, or a list's item by its index (`"0"`, `"1"`, ...).
    ///
    /// ```
    /// # use workerman::protocols::http::Field;
    /// let list = Field::List(vec![Field::Text("a".into())]);
    /// assert_eq!(list.get("0").and_then(Field::as_str), Some("a"));
    /// assert_eq!(list.get("x"), None);
    /// ```
    pub fn get(&self, key: &str) -> Option<&Field> {
        match self {
            Field::Text(_) => None,
            Field::List(items) => items.get(key.parse::<usize>().ok()?),
            Field::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
        }
    }
}

/// A tree being built: every container is an ordered map here, with PHP's next free index.
#[derive(Default)]
struct Node {
    entries: Vec<(String, Slot)>,
    next_index: u64,
}

enum Slot {
    Text(String),
    Node(Node),
}

impl Node {
    fn slot(&mut self, key: Option<&str>) -> &mut Slot {
        let key = match key {
            Some(key) => {
                if let Ok(index) = key.parse::<u64>() {
                    if index.to_string() == key {
                        self.next_index = self.next_index.max(index.saturating_add(1));
                    }
                }
                key.to_owned()
            }
            None => {
                let index = self.next_index;
                self.next_index = index.saturating_add(1);
                index.to_string()
            }
        };
        let position = match self.entries.iter().position(|(k, _)| *k == key) {
            Some(position) => position,
            None => {
                self.entries.push((key, Slot::Text(String::new())));
                self.entries.len() - 1
            }
        };
        &mut self.entries[position].1
    }

    fn into_field(self) -> Field {
        let is_list = self
            .entries
            .iter()
            .enumerate()
            .all(|(index, (key, _))| *key == index.to_string());
        let convert = |slot: Slot| match slot {
            Slot::Text(text) => Field::Text(text),
            Slot::Node(node) => node.into_field(),
        };
        if is_list && !self.entries.is_empty() {
            Field::List(self.entries.into_iter().map(|(_, s)| convert(s)).collect())
        } else {
            Field::Map(
                self.entries
                    .into_iter()
                    .map(|(k, s)| (k, convert(s)))
                    .collect(),
            )
        }
    }
}

/// `name` split PHP's way: `a[b][]` is `a` then keys `Some("b")`, `None` (append). A name
/// whose brackets do not close is taken whole, as a plain name.
fn split_name(name: &str) -> (&str, Vec<Option<&str>>) {
    let Some(open) = name.find('[').filter(|&open| open > 0) else {
        return (name, Vec::new());
    };
    let (base, mut rest) = name.split_at(open);
    let mut keys = Vec::new();
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(close) = inner.find(']') else {
            break;
        };
        let key = &inner[..close];
        keys.push((!key.is_empty()).then_some(key));
        rest = &inner[close + 1..];
    }
    if keys.is_empty() {
        return (name, Vec::new());
    }
    // PHP ignores what follows the last closing bracket.
    (base, keys)
}

/// The fields of `pairs` (in order, later values replacing earlier ones) as one map.
pub(crate) fn build<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> Field {
    let mut root = Node::default();
    for (name, value) in pairs {
        let (base, keys) = split_name(name);
        if base.is_empty() || keys.len() >= MAX_DEPTH {
            continue;
        }
        let mut slot = root.slot(Some(base));
        for key in keys {
            if !matches!(slot, Slot::Node(_)) {
                *slot = Slot::Node(Node::default());
            }
            let Slot::Node(node) = slot else {
                unreachable!("made a node just above");
            };
            slot = node.slot(key);
        }
        *slot = Slot::Text(value.to_owned());
    }
    match root.into_field() {
        // The top level is keyed by names, even when they are `0, 1, ...`.
        Field::List(items) => Field::Map(
            items
                .into_iter()
                .enumerate()
                .map(|(index, item)| (index.to_string(), item))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &str) -> Field {
        Field::Text(value.into())
    }

    fn parse(pairs: &[(&str, &str)]) -> Field {
        build(pairs.iter().copied())
    }

    #[test]
    fn lists_maps_and_nesting_follow_parse_str() {
        let field = parse(&[
            ("a[]", "1"),
            ("a[]", "2"),
            ("u[name]", "x"),
            ("u[tags][]", "t"),
        ]);
        assert_eq!(
            field.get("a"),
            Some(&Field::List(vec![text("1"), text("2")]))
        );
        assert_eq!(
            field.get("u"),
            Some(&Field::Map(vec![
                ("name".into(), text("x")),
                ("tags".into(), Field::List(vec![text("t")])),
            ]))
        );
    }

    #[test]
    fn explicit_indexes_mixed_keys_and_replacement() {
        // `a[5]=x&a[]=y`: the next index after 5 is 6, so a map, not a list.
        let field = parse(&[("a[5]", "x"), ("a[]", "y")]);
        assert_eq!(
            field.get("a"),
            Some(&Field::Map(vec![
                ("5".into(), text("x")),
                ("6".into(), text("y"))
            ]))
        );
        let field = parse(&[("a[0]", "x"), ("a[1]", "y")]);
        assert_eq!(
            field.get("a"),
            Some(&Field::List(vec![text("x"), text("y")]))
        );
        // A later plain value replaces an array, a later array replaces a plain value.
        let field = parse(&[("a[]", "1"), ("a", "plain"), ("b", "plain"), ("b[k]", "v")]);
        assert_eq!(field.get("a"), Some(&text("plain")));
        assert_eq!(field.get("b").and_then(|b| b.get("k")), Some(&text("v")));
    }

    #[test]
    fn odd_names_stay_plain_and_depth_is_bounded() {
        let field = parse(&[("a[b", "1"), ("[x]", "2"), ("c[d]e", "3"), ("0", "z")]);
        assert_eq!(field.get("a[b"), Some(&text("1")));
        assert_eq!(field.get("[x]"), Some(&text("2")));
        assert_eq!(field.get("c").and_then(|c| c.get("d")), Some(&text("3")));
        assert_eq!(field.get("0"), Some(&text("z")));
        assert!(field.as_map().is_some(), "the top level is always a map");
        let deep = format!("d{}", "[k]".repeat(64));
        let field = parse(&[(deep.as_str(), "v")]);
        assert_eq!(field.get("d"), None);
        let ok = format!("d{}", "[k]".repeat(63));
        assert!(parse(&[(ok.as_str(), "v")]).get("d").is_some());
    }
}
