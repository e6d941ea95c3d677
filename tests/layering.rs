//! The crate's floors, checked from its source: every `use crate::…` / `super::…` / `crate::…`
//! path in `src/` is resolved to the file that defines the item (through `pub use`
//! re-exports), and the resulting graph between files must
//! - have no cycle (between files, not only folders),
//! - never import upwards between the floors process → worker → reactor (timer beside it) →
//!   connection → protocols,
//! - keep `src/protocols/` sans-I/O: from outside itself it may name only the `TcpConnection`
//!   type (`src/connection/handle.rs`), which the public `Protocol` trait's signatures take.
//!
//! `#[cfg(test)]` modules are left out (a unit test may reach anywhere). Edges still to be
//! removed are listed in [`KNOWN`]: a new one fails, and so does a listed one that is gone
//! (strike it from the list). `cargo test --test layering` prints the graph's violations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges (importer, imported) that break a floor rule today. Each is debt: the list only
/// shrinks (see docs/architecture.md, "Not there yet").
const KNOWN: &[(&str, &str)] = &[];

/// Files still in an import cycle once the [`KNOWN`] edges are taken out (a cycle inside one
/// floor, or through the modules beside the floors). Debt too: the list only shrinks.
const KNOWN_IN_CYCLES: &[&str] = &[];

/// A source file: its module path from the crate root and its text without comments, string
/// literals and `#[cfg(test)]` modules.
struct SourceFile {
    module: Vec<String>,
    code: String,
}

fn main_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            files.push(path);
        }
    }
}

/// `src/a/b.rs` → `["a", "b"]`; `src/a/mod.rs` → `["a"]`; `src/lib.rs` → the root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let stem = last.trim_end_matches(".rs").to_owned();
    if stem != "mod" && !(stem == "lib" && parts.is_empty()) {
        parts.push(stem);
    }
    parts
}

/// The text with comments, string and char literals blanked out.
fn strip(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            while i < bytes.len() && bytes[i] != b'\n' {
                i += 1;
            }
        } else if rest.starts_with(b"/*") {
            let mut depth = 0;
            while i < bytes.len() {
                if bytes[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if bytes[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if let Some(hashes) = raw_string_start(rest) {
            // r"…", r#"…"#, br"…"
            let open = rest.iter().position(|&byte| byte == b'"').unwrap();
            i += open + 1;
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            while i < bytes.len() && !bytes[i..].starts_with(&close) {
                i += 1;
            }
            i += close.len();
            out.push_str("\"\"");
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if bytes[i] == b'\'' {
            // A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): skip only the first.
            if let Some(length) = char_literal_length(rest) {
                i += length;
                out.push_str("' '");
            } else {
                out.push('\'');
                i += 1;
            }
        } else {
            let character = text[i..].chars().next().unwrap();
            out.push(character);
            i += character.len_utf8();
        }
    }
    out
}

fn raw_string_start(rest: &[u8]) -> Option<usize> {
    let after_prefix = if rest.starts_with(b"br") {
        &rest[2..]
    } else if rest.starts_with(b"r") {
        &rest[1..]
    } else {
        return None;
    };
    let hashes = after_prefix
        .iter()
        .take_while(|&&byte| byte == b'#')
        .count();
    (after_prefix.get(hashes) == Some(&b'"')).then_some(hashes)
}

fn char_literal_length(rest: &[u8]) -> Option<usize> {
    if rest.get(1) == Some(&b'\\') {
        let close = rest[2..].iter().position(|&byte| byte == b'\'')?;
        return Some(close + 3);
    }
    let text = std::str::from_utf8(&rest[1..rest.len().min(6)])
        .unwrap_or_else(|error| std::str::from_utf8(&rest[1..1 + error.valid_up_to()]).unwrap());
    let character = text.chars().next()?;
    let length = character.len_utf8();
    (rest.get(1 + length) == Some(&b'\'')).then_some(length + 2)
}

/// The code without `#[cfg(test)]` items (a `mod tests { … }`, a test-only function).
fn without_test_items(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "#[cfg(test)]".len()..];
        // The item ends at its first `;` before any `{`, or at the `}` closing its first `{`.
        let semicolon = after.find(';');
        let brace = after.find('{');
        let end = match (semicolon, brace) {
            (Some(semicolon), Some(brace)) if semicolon < brace => semicolon + 1,
            (_, Some(brace)) => {
                let mut depth = 0;
                let mut end = after.len();
                for (offset, character) in after[brace..].char_indices() {
                    match character {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + offset + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semicolon), None) => semicolon + 1,
            (None, None) => after.len(),
        };
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Expands a use tree (`a::{b, c::{d, e}}`, `a::b as c`, `a::*`) into (path, visible name).
fn expand(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    if tree.is_empty() {
        return;
    }
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = split_path(&tree[..open]);
        let inner = &tree[open + 1..tree.rfind('}').unwrap()];
        let mut base = prefix.to_vec();
        base.extend(head);
        for part in split_top_level(inner) {
            expand(part, &base, out);
        }
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((path, alias)) => (path, Some(alias.trim().to_owned())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(split_path(path));
    if full.last().is_some_and(|last| last == "self") {
        full.pop();
    }
    let name = alias.or_else(|| full.last().cloned());
    out.push((full, name));
}

fn split_path(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

fn split_top_level(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (index, character) in inner.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&inner[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    parts
}

/// One `use` declaration: its tree, whether it re-exports (`pub use`, `pub(crate) use`), and
/// where it is in the code.
fn use_declarations(code: &str) -> Vec<(String, bool, std::ops::Range<usize>)> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut search = 0;
    while let Some(offset) = code[search..].find("use ") {
        let at = search + offset;
        search = at + 4;
        let before = code[..at].trim_end();
        let starts_item = at == 0
            || !bytes[at - 1].is_ascii_alphanumeric()
                && bytes[at - 1] != b'_'
                && (before.is_empty()
                    || before.ends_with(';')
                    || before.ends_with('}')
                    || before.ends_with('{')
                    || before.ends_with(']')
                    || before.ends_with("pub")
                    || before.ends_with(')'));
        if !starts_item {
            continue;
        }
        let Some(end) = code[at..].find(';') else {
            continue;
        };
        let tree = code[at + 4..at + end].to_owned();
        let visibility = before
            .rsplit([';', '}', '{', ']', '\n'])
            .next()
            .unwrap_or("");
        let public = visibility.trim_start().starts_with("pub");
        found.push((tree, public, at..at + end));
        search = at + end;
    }
    found
}

/// `crate::a::b` / `super::a` paths written inline in code (not in `use` declarations).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let bytes = code.as_bytes();
    for keyword in ["crate::", "super::"] {
        let mut search = 0;
        while let Some(offset) = code[search..].find(keyword) {
            let at = search + offset;
            search = at + keyword.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                continue;
            }
            if at >= 2 && &code[at - 2..at] == "::" {
                continue; // `super::super::…` is read from its first `super`
            }
            let mut end = at;
            while end < bytes.len()
                && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b':')
            {
                end += 1;
            }
            paths.push(split_path(&code[at..end]));
        }
    }
    paths
}

struct Crate {
    files: BTreeMap<String, SourceFile>,
    /// Module path → file name.
    modules: BTreeMap<Vec<String>, String>,
    /// File → (exported name → absolute path), from its `pub use` declarations.
    exports: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl Crate {
    fn load() -> Crate {
        let root = main_dir();
        let mut paths = Vec::new();
        collect(&root, &mut paths);
        let mut files = BTreeMap::new();
        let mut modules = BTreeMap::new();
        for path in paths {
            let relative = path.strip_prefix(&root).unwrap();
            let name = format!("src/{}", relative.display());
            let module = module_of(relative);
            let text = std::fs::read_to_string(&path).unwrap();
            let code = without_test_items(&strip(&text));
            modules.insert(module.clone(), name.clone());
            files.insert(name, SourceFile { module, code });
        }
        let mut krate = Crate {
            files,
            modules,
            exports: BTreeMap::new(),
        };
        let mut exports = BTreeMap::new();
        for (name, file) in &krate.files {
            let mut map = BTreeMap::new();
            for (tree, public, _) in use_declarations(&file.code) {
                if !public {
                    continue;
                }
                let mut expanded = Vec::new();
                expand(&tree, &[], &mut expanded);
                for (path, visible) in expanded {
                    if let (Some(absolute), Some(visible)) = (krate.absolute(file, &path), visible)
                    {
                        map.insert(visible, absolute);
                    }
                }
            }
            exports.insert(name.clone(), map);
        }
        krate.exports = exports;
        krate
    }

    /// The module a file's own names live in (a `mod.rs` is its folder's module).
    fn own_module(file: &SourceFile) -> Vec<String> {
        file.module.clone()
    }

    /// A path as written in `file`, made absolute from the crate root; `None` for other crates.
    fn absolute(&self, file: &SourceFile, path: &[String]) -> Option<Vec<String>> {
        let first = path.first()?;
        let mut base = Crate::own_module(file);
        let mut rest = path;
        match first.as_str() {
            "crate" => {
                base.clear();
                rest = &path[1..];
            }
            "self" => rest = &path[1..],
            "super" => {
                while rest.first().is_some_and(|part| part == "super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
            }
            // A child module of this one named first (`use stream::Stream` in a mod.rs).
            name if {
                let mut child = base.clone();
                child.push(name.to_owned());
                self.modules.contains_key(&child)
            } => {}
            _ => return None,
        }
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The file that defines what an absolute path names (through re-exports).
    fn resolve(&self, path: &[String], depth: usize) -> Option<String> {
        let mut length = path.len();
        while !self.modules.contains_key(&path[..length]) {
            length = length.checked_sub(1)?;
        }
        let file = self.modules[&path[..length]].clone();
        if depth < 8 {
            if let Some(name) = path.get(length) {
                if let Some(target) = self.exports[&file].get(name) {
                    let mut next = target.clone();
                    next.extend(path[length + 1..].iter().cloned());
                    if next != path {
                        return self.resolve(&next, depth + 1).or(Some(file));
                    }
                }
            }
        }
        Some(file)
    }

    /// Every file each file imports (itself left out).
    fn graph(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut graph = BTreeMap::new();
        for (name, file) in &self.files {
            let mut targets = BTreeSet::new();
            let mut paths = Vec::new();
            let mut rest_of_code = file.code.clone();
            for (tree, public, span) in use_declarations(&file.code) {
                rest_of_code.replace_range(span.clone(), &" ".repeat(span.len()));
                // A re-export names an item for others; it is not this file's dependency
                // (an importer's edge goes to the file that defines the item).
                if public {
                    continue;
                }
                let mut expanded = Vec::new();
                expand(&tree, &[], &mut expanded);
                paths.extend(expanded.into_iter().map(|(path, _)| path));
            }
            paths.extend(inline_paths(&rest_of_code));
            for path in paths {
                let Some(absolute) = self.absolute(file, &path) else {
                    continue;
                };
                if let Some(target) = self.resolve(&absolute, 0) {
                    if &target != name {
                        targets.insert(target);
                    }
                }
            }
            graph.insert(name.clone(), targets);
        }
        graph
    }
}

/// A file's floor: process 5, worker 4, reactor and timer 3, connection 2, protocols 1; other
/// modules have none (they must only stay out of cycles).
fn floor(file: &str) -> Option<u8> {
    let top = file
        .trim_start_matches("src/")
        .split(['/', '.'])
        .next()
        .unwrap();
    match top {
        "process" => Some(5),
        "worker" => Some(4),
        "reactor" | "timer" => Some(3),
        "connection" => Some(2),
        "protocols" => Some(1),
        _ => None,
    }
}

/// Why an edge breaks a rule, or `None` when it is fine.
fn violation(from: &str, to: &str) -> Option<&'static str> {
    if from.starts_with("src/protocols/") && !to.starts_with("src/protocols/") {
        if to == "src/connection/handle.rs" {
            return None;
        }
        return Some("a codec imports from above (only TcpConnection may be named)");
    }
    match (floor(from), floor(to)) {
        (Some(low), Some(high)) if low < high => Some("an import upwards between floors"),
        _ => None,
    }
}

/// The graph's strongly connected components of more than one file (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(state: &mut State<'a>, node: &'a str) {
        state.index.insert(node, state.next);
        state.low.insert(node, state.next);
        state.next += 1;
        state.stack.push(node);
        state.on_stack.insert(node);
        for target in &state.graph[node] {
            let target = target.as_str();
            if !state.index.contains_key(target) {
                visit(state, target);
                let low = state.low[node].min(state.low[target]);
                state.low.insert(node, low);
            } else if state.on_stack.contains(target) {
                let low = state.low[node].min(state.index[target]);
                state.low.insert(node, low);
            }
        }
        if state.low[node] == state.index[node] {
            let mut component = Vec::new();
            loop {
                let member = state.stack.pop().unwrap();
                state.on_stack.remove(member);
                component.push(member.to_owned());
                if member == node {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                state.found.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for node in graph.keys() {
        if !state.index.contains_key(node.as_str()) {
            visit(&mut state, node);
        }
    }
    state.found
}

/// The edges inside a cycle: those whose target reaches back to their source.
fn cycle_edges(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<(String, String)> {
    let mut edges = BTreeSet::new();
    for component in cycles(graph) {
        let members: BTreeSet<&String> = component.iter().collect();
        for from in &component {
            for to in &graph[from] {
                if members.contains(to) {
                    edges.insert((from.clone(), to.clone()));
                }
            }
        }
    }
    edges
}

#[test]
fn the_floors_hold_and_no_file_imports_in_a_cycle() {
    let krate = Crate::load();
    let graph = krate.graph();
    let mut broken = BTreeMap::new();
    for (from, targets) in &graph {
        for to in targets {
            if let Some(why) = violation(from, to) {
                broken.insert((from.clone(), to.clone()), why);
            }
        }
    }
    // Without the edges that break a floor rule, what is left must have no cycle but those
    // KNOWN lists (edges between files of one floor, or of the modules beside the floors).
    let mut rest = graph.clone();
    for (from, to) in broken.keys() {
        rest.get_mut(from).unwrap().remove(to);
    }
    let in_cycles: BTreeSet<String> = cycles(&rest).into_iter().flatten().collect();
    let known_in_cycles: BTreeSet<String> = KNOWN_IN_CYCLES
        .iter()
        .map(|file| file.to_string())
        .collect();
    let new_in_cycles: Vec<String> = in_cycles
        .difference(&known_in_cycles)
        .map(|file| format!("    \"{file}\","))
        .collect();
    let out_of_cycles: Vec<&String> = known_in_cycles.difference(&in_cycles).collect();
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(from, to)| (from.to_string(), to.to_string()))
        .collect();
    let new: Vec<String> = broken
        .iter()
        .filter(|(edge, _)| !known.contains(*edge))
        .map(|((from, to), why)| format!("    (\"{from}\", \"{to}\"), // {why}"))
        .collect();
    let gone: Vec<String> = known
        .iter()
        .filter(|edge| !broken.contains_key(*edge))
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect();
    let components: Vec<String> = cycles(&rest)
        .iter()
        .map(|component| component.join(" "))
        .collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "floor rules broken ({} new):\n{}\nfixed (strike from KNOWN):\n{}",
        new.len(),
        new.join("\n"),
        gone.join("\n"),
    );
    assert!(
        new_in_cycles.is_empty() && out_of_cycles.is_empty(),
        "files in import cycles ({} new):\n{}\nout of cycles (strike from KNOWN_IN_CYCLES): \
         {out_of_cycles:?}\ncycles:\n{}",
        new_in_cycles.len(),
        new_in_cycles.join("\n"),
        components.join("\n")
    );
}

#[test]
fn the_checker_sees_a_cycle_an_upward_import_and_a_codec_doing_io() {
    // The rules on a small graph, so a checker that finds nothing cannot pass for one that works.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let edge = |graph: &mut BTreeMap<String, BTreeSet<String>>, from: &str, to: &str| {
        graph.entry(from.into()).or_default().insert(to.into());
        graph.entry(to.into()).or_default();
    };
    edge(&mut graph, "src/a.rs", "src/b.rs");
    edge(&mut graph, "src/b.rs", "src/c.rs");
    edge(&mut graph, "src/c.rs", "src/a.rs");
    edge(&mut graph, "src/c.rs", "src/d.rs");
    assert_eq!(
        cycles(&graph),
        vec![vec!["src/a.rs", "src/b.rs", "src/c.rs"]]
    );
    assert_eq!(cycle_edges(&graph).len(), 3);
    assert!(violation("src/connection/io.rs", "src/reactor.rs").is_some());
    assert!(violation("src/reactor.rs", "src/connection/io.rs").is_none());
    assert!(violation("src/protocols/http/mod.rs", "src/connection/io.rs").is_some());
    assert!(violation("src/protocols/text.rs", "src/connection/handle.rs").is_none());
    assert!(violation("src/protocols/http/session.rs", "src/redis/client.rs").is_some());
    // Paths as written resolve to the file that defines the item.
    let krate = Crate::load();
    let text = &krate.files["src/protocols/text.rs"];
    let path = krate
        .absolute(text, &split_path("crate::connection::TcpConnection"))
        .unwrap();
    assert_eq!(
        krate.resolve(&path, 0).as_deref(),
        Some("src/connection/handle.rs")
    );
    let mut expanded = Vec::new();
    expand("crate::a::{b, c::{d as e, self}}", &[], &mut expanded);
    let paths: Vec<String> = expanded.iter().map(|(path, _)| path.join("::")).collect();
    assert_eq!(paths, ["crate::a::b", "crate::a::c::d", "crate::a::c"]);
    assert_eq!(
        strip("let s = \"crate::x\"; // crate::y\nc"),
        "let s = \"\"; \nc"
    );
}
