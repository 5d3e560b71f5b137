//! AWS's own API models (botocore's JSON, vendored under `models/`), read at run time so the
//! sandbox refuses what AWS refuses without a hand-written rule per field.
//!
//! A [`Model`] answers four questions for the services that use it:
//! - **which operation** a REST-JSON request is ([`Model::route`], from each operation's
//!   `http.method` and `http.requestUri`);
//! - **what the request says**, as one JSON value keyed by member name, whether a member came from
//!   the URI, the query string, a header, the JSON body ([`Model::rest_input`]) or a Query-protocol
//!   form (`Tags.member.1.Key`, [`Model::query_input`]);
//! - **whether AWS would accept it** ([`Model::validate`]): wrong JSON types are a
//!   `SerializationException` (the service cannot read the request); broken constraints
//!   (`required`, `enum`, `pattern`, `min`/`max` length, `min`/`max` value) are collected, in
//!   member-name order, and worded as AWS's validation layer words them: "2 validation errors detected: Value 'X' at
//!   'domainName' failed to satisfy constraint: Member must satisfy regular expression pattern:
//!   [a-z][a-z0-9\-]+; Value ...";
//! - **whether an answer fits the output shape** ([`Model::check_output`]): required members,
//!   types, enum values and no member the model does not define. The tests run every answer of
//!   the sandbox through it.
//!
//! Patterns are Java regular expressions matched against the whole value; they are compiled with
//! `fancy-regex` (look-ahead appears in the models) with `.` matching newlines, as AWS accepts
//! pretty-printed policy documents under the pattern `.*`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value};

/// Why a request does not fit its operation's input shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// One or more constraints are broken: AWS's `ValidationException` (`ValidationError` in IAM),
    /// with AWS's message.
    Validation(String),
    /// A member has a type the service cannot read (`SerializationException`).
    Serialization(String),
}

impl Invalid {
    pub fn message(&self) -> &str {
        match self {
            Self::Validation(m) | Self::Serialization(m) => m,
        }
    }
}

/// One service's model.
pub struct Model {
    protocol: String,
    operations: Map<String, Value>,
    shapes: Map<String, Value>,
    routes: Vec<Route>,
    patterns: Mutex<HashMap<String, Option<Arc<fancy_regex::Regex>>>>,
}

/// A REST operation's request line, split into segments.
struct Route {
    operation: String,
    method: String,
    segments: Vec<Segment>,
    /// Query keys the request URI fixes (`?policy`), with their value when it has one.
    query: Vec<(String, Option<String>)>,
}

enum Segment {
    Literal(String),
    Label(String),
    Greedy(String),
}

/// The OpenSearch Service control-plane model (2021-01-01).
pub fn opensearch() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        Model::parse(include_str!("../models/opensearch-2021-01-01.json"))
            .expect("the vendored OpenSearch Service model is valid JSON")
    })
}

/// The IAM model (2010-05-08).
pub fn iam() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        Model::parse(include_str!("../models/iam-2010-05-08.json"))
            .expect("the vendored IAM model is valid JSON")
    })
}

/// The STS model (2011-06-15).
pub fn sts() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        Model::parse(include_str!("../models/sts-2011-06-15.json"))
            .expect("the vendored STS model is valid JSON")
    })
}

/// `DomainName` → `domainName`: how AWS's validation messages name a member.
fn lower_first(name: &str) -> String {
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// A value as AWS's messages print it (Java's `toString`).
fn render(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(render).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}={}", render(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn violation(value: &Value, path: &str, constraint: &str) -> String {
    match value {
        Value::Null => format!("Value null at '{path}' failed to satisfy constraint: {constraint}"),
        v => format!(
            "Value '{}' at '{path}' failed to satisfy constraint: {constraint}",
            render(v)
        ),
    }
}

/// A number from the model (`min`/`max` may be written as floats), printed as AWS prints it.
fn bound(shape: &Map<String, Value>, key: &str) -> Option<f64> {
    shape.get(key).and_then(Value::as_f64)
}

fn show_bound(b: f64) -> String {
    if b.fract() == 0.0 {
        format!("{}", b as i64)
    } else {
        b.to_string()
    }
}

/// Java character classes the models use that the Rust regex syntax spells differently.
fn java_pattern(pattern: &str) -> String {
    pattern
        .replace(r"\p{XDigit}", "[0-9a-fA-F]")
        .replace(r"\p{Alnum}", "[a-zA-Z0-9]")
        .replace(r"\p{Alpha}", "[a-zA-Z]")
        .replace(r"\p{Digit}", "[0-9]")
        .replace(r"\p{Upper}", "[A-Z]")
        .replace(r"\p{Lower}", "[a-z]")
}

fn token(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "STRING_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Null => "VALUE_NULL",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

/// What a walk over a value checks.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// A request: types are a `SerializationException`; constraints are collected.
    Input,
    /// An answer: types, required members, enum values and unknown members are collected.
    Output,
}

impl Model {
    /// Reads a botocore service model.
    pub fn parse(text: &str) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        let protocol = value["metadata"]["protocol"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let operations = value["operations"].as_object().cloned().unwrap_or_default();
        let shapes = value["shapes"].as_object().cloned().unwrap_or_default();
        let routes = operations
            .iter()
            .filter_map(|(name, op)| {
                let method = op["http"]["method"].as_str()?.to_owned();
                let uri = op["http"]["requestUri"].as_str()?;
                let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
                let segments = path
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(
                        |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                            Some(label) => match label.strip_suffix('+') {
                                Some(greedy) => Segment::Greedy(greedy.to_owned()),
                                None => Segment::Label(label.to_owned()),
                            },
                            None => Segment::Literal(s.to_owned()),
                        },
                    )
                    .collect();
                let query = query
                    .split('&')
                    .filter(|q| !q.is_empty())
                    .map(|q| match q.split_once('=') {
                        Some((k, v)) => (k.to_owned(), Some(v.to_owned())),
                        None => (q.to_owned(), None),
                    })
                    .collect();
                Some(Route {
                    operation: name.clone(),
                    method,
                    segments,
                    query,
                })
            })
            .collect();
        Ok(Self {
            protocol,
            operations,
            shapes,
            routes,
            patterns: Mutex::new(HashMap::new()),
        })
    }

    /// `rest-json`, `query`, `rest-xml`, ...
    pub fn protocol(&self) -> &str {
        &self.protocol
    }

    /// Every operation the model defines.
    pub fn operation_names(&self) -> impl Iterator<Item = &str> {
        self.operations.keys().map(String::as_str)
    }

    pub fn has_operation(&self, name: &str) -> bool {
        self.operations.contains_key(name)
    }

    /// The operation's input shape's name.
    pub fn input_shape(&self, operation: &str) -> Option<&str> {
        self.operations.get(operation)?["input"]["shape"].as_str()
    }

    /// The operation's output shape's name.
    pub fn output_shape(&self, operation: &str) -> Option<&str> {
        self.operations.get(operation)?["output"]["shape"].as_str()
    }

    /// The element wrapping a Query-protocol answer (`CreateRoleResult`).
    pub fn result_wrapper(&self, operation: &str) -> Option<&str> {
        self.operations.get(operation)?["output"]["resultWrapper"].as_str()
    }

    /// The errors an operation may answer: each error's code (the shape's `error.code`, else its
    /// name) and HTTP status, when the model gives one.
    pub fn errors(&self, operation: &str) -> Vec<(String, Option<u16>)> {
        let Some(op) = self.operations.get(operation) else {
            return Vec::new();
        };
        op["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["shape"].as_str())
            .map(|name| {
                let def = self.shape(name).cloned().unwrap_or_default();
                let code = def
                    .get("error")
                    .and_then(|e| e.get("code"))
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_owned();
                let status = def
                    .get("error")
                    .and_then(|e| e.get("httpStatusCode"))
                    .and_then(Value::as_u64)
                    .map(|s| s as u16);
                (code, status)
            })
            .collect()
    }

    /// A shape's definition.
    pub fn shape(&self, name: &str) -> Option<&Map<String, Value>> {
        self.shapes.get(name)?.as_object()
    }

    /// `structure`, `list`, `map`, `string`, `integer`, ...
    pub fn shape_type(&self, name: &str) -> Option<&str> {
        self.shape(name)?.get("type")?.as_str()
    }

    /// A structure's members (in name order), with their shapes.
    pub fn members(&self, shape: &str) -> Vec<(&str, &str)> {
        self.shape(shape)
            .and_then(|s| s.get("members"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(name, def)| Some((name.as_str(), def["shape"].as_str()?)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The shape of one member of a structure.
    pub fn member_shape(&self, shape: &str, member: &str) -> Option<&str> {
        self.shape(shape)?.get("members")?.get(member)?["shape"].as_str()
    }

    /// A string shape's allowed values, when it is an enum.
    pub fn enum_values(&self, shape: &str) -> Option<Vec<&str>> {
        self.shape(shape)?
            .get("enum")?
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
    }

    fn regex(&self, pattern: &str) -> Option<Arc<fancy_regex::Regex>> {
        let mut cache = self.patterns.lock().expect("pattern cache");
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| {
                fancy_regex::Regex::new(&format!("(?s)^(?:{})$", java_pattern(pattern)))
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    }

    /// Whether a model pattern can be checked (it compiles); tests list those that cannot.
    pub fn pattern_compiles(&self, pattern: &str) -> bool {
        self.regex(pattern).is_some()
    }

    /// Which operation a REST request is, and the values of its URI labels (decoded).
    pub fn route(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
    ) -> Option<(String, BTreeMap<String, String>)> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let mut best: Option<(usize, String, BTreeMap<String, String>)> = None;
        'routes: for route in self.routes.iter().filter(|r| r.method == method) {
            let mut labels = BTreeMap::new();
            let mut score = 0;
            let mut i = 0;
            for segment in &route.segments {
                match segment {
                    Segment::Literal(l) => {
                        if segments.get(i) != Some(&l.as_str()) {
                            continue 'routes;
                        }
                        score += 2;
                        i += 1;
                    }
                    Segment::Label(name) => {
                        let Some(s) = segments.get(i) else {
                            continue 'routes;
                        };
                        labels.insert(name.clone(), decode(s));
                        i += 1;
                    }
                    Segment::Greedy(name) => {
                        if i >= segments.len() {
                            continue 'routes;
                        }
                        let rest: Vec<String> = segments[i..].iter().map(|s| decode(s)).collect();
                        labels.insert(name.clone(), rest.join("/"));
                        i = segments.len();
                    }
                }
            }
            if i != segments.len() {
                continue;
            }
            for (key, value) in &route.query {
                let present = query
                    .iter()
                    .any(|(k, v)| k == key && value.as_ref().is_none_or(|want| want == v));
                if !present {
                    continue 'routes;
                }
                score += 1;
            }
            if best.as_ref().is_none_or(|(s, ..)| score > *s) {
                best = Some((score, route.operation.clone(), labels));
            }
        }
        best.map(|(_, op, labels)| (op, labels))
    }

    /// A scalar written as text (a URI label, a query parameter, a header, a form field).
    fn scalar_from_text(&self, shape: &str, text: &str, path: &str) -> Result<Value, Invalid> {
        let bad = |kind: &str| {
            Invalid::Serialization(format!(
                "Value '{text}' at '{path}' cannot be read as {kind}"
            ))
        };
        Ok(match self.shape_type(shape).unwrap_or("string") {
            "integer" | "long" => Value::from(text.parse::<i64>().map_err(|_| bad("an integer"))?),
            "double" | "float" => Value::from(text.parse::<f64>().map_err(|_| bad("a number"))?),
            "boolean" => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return Err(bad("a boolean")),
            },
            _ => Value::String(text.to_owned()),
        })
    }

    /// A REST-JSON request as one value keyed by member name: URI labels, query parameters,
    /// headers and body members, each where the input shape says it travels.
    pub fn rest_input(
        &self,
        operation: &str,
        labels: &BTreeMap<String, String>,
        query: &[(String, String)],
        headers: &http::HeaderMap,
        body: &Value,
    ) -> Result<Value, Invalid> {
        let mut out = Map::new();
        let Some(shape_name) = self.input_shape(operation) else {
            return Ok(Value::Object(out));
        };
        let shape = self.shape(shape_name).cloned().unwrap_or_default();
        let payload = shape.get("payload").and_then(Value::as_str);
        let has_body_members = shape
            .get("members")
            .and_then(Value::as_object)
            .is_some_and(|m| m.values().any(|d| d.get("location").is_none()));
        if has_body_members && !matches!(body, Value::Object(_) | Value::Null) {
            return Err(Invalid::Serialization(match body {
                Value::Array(_) => "Start of list found where not expected".to_owned(),
                other => format!("{} can not be read as a structure", token(other)),
            }));
        }
        let members = shape
            .get("members")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (name, def) in &members {
            let member_shape = def["shape"].as_str().unwrap_or("");
            let wire = def["locationName"].as_str().unwrap_or(name);
            let path = lower_first(name);
            match def.get("location").and_then(Value::as_str) {
                Some("uri") => {
                    if let Some(v) = labels.get(wire) {
                        out.insert(name.clone(), self.scalar_from_text(member_shape, v, &path)?);
                    }
                }
                Some("querystring") => {
                    let values: Vec<&str> = query
                        .iter()
                        .filter(|(k, _)| k == wire)
                        .map(|(_, v)| v.as_str())
                        .collect();
                    if values.is_empty() {
                        continue;
                    }
                    if self.shape_type(member_shape) == Some("list") {
                        let element = self
                            .shape(member_shape)
                            .and_then(|s| s["member"]["shape"].as_str())
                            .unwrap_or("");
                        let items = values
                            .iter()
                            .map(|v| self.scalar_from_text(element, v, &path))
                            .collect::<Result<Vec<_>, _>>()?;
                        out.insert(name.clone(), Value::Array(items));
                    } else {
                        out.insert(
                            name.clone(),
                            self.scalar_from_text(member_shape, values[0], &path)?,
                        );
                    }
                }
                Some("header") => {
                    if let Some(v) = headers.get(wire).and_then(|v| v.to_str().ok()) {
                        out.insert(name.clone(), self.scalar_from_text(member_shape, v, &path)?);
                    }
                }
                Some(_) => {}
                None if payload == Some(name.as_str()) => {
                    if !body.is_null() {
                        out.insert(name.clone(), body.clone());
                    }
                }
                None => {
                    let key = def["jsonName"].as_str().unwrap_or(wire);
                    if let Some(v) = body.get(key).filter(|v| !v.is_null()) {
                        out.insert(name.clone(), v.clone());
                    }
                }
            }
        }
        Ok(Value::Object(out))
    }

    /// A Query-protocol request (`RoleName=x&Tags.member.1.Key=k`) as one value keyed by member.
    pub fn query_input(
        &self,
        operation: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Value, Invalid> {
        match self.input_shape(operation) {
            Some(shape) => Ok(self
                .query_value(shape, "", params)?
                .unwrap_or_else(|| Value::Object(Map::new()))),
            None => Ok(Value::Object(Map::new())),
        }
    }

    fn query_value(
        &self,
        shape: &str,
        prefix: &str,
        params: &BTreeMap<String, String>,
    ) -> Result<Option<Value>, Invalid> {
        let Some(def) = self.shape(shape) else {
            return Ok(None);
        };
        match def.get("type").and_then(Value::as_str).unwrap_or("") {
            "structure" => {
                let mut out = Map::new();
                let members = def.get("members").and_then(Value::as_object);
                for (name, m) in members.into_iter().flatten() {
                    let wire = m["locationName"].as_str().unwrap_or(name);
                    let key = join(prefix, wire);
                    if let Some(v) =
                        self.query_value(m["shape"].as_str().unwrap_or(""), &key, params)?
                    {
                        out.insert(name.clone(), v);
                    }
                }
                Ok((!out.is_empty() || prefix.is_empty()).then_some(Value::Object(out)))
            }
            "list" => {
                let element = def["member"]["shape"].as_str().unwrap_or("");
                let flattened = def.get("flattened").and_then(Value::as_bool) == Some(true);
                let wrapper = def["member"]["locationName"].as_str().unwrap_or("member");
                let mut items = Vec::new();
                for i in 1.. {
                    let key = if flattened {
                        format!("{prefix}.{i}")
                    } else {
                        format!("{prefix}.{wrapper}.{i}")
                    };
                    match self.query_value(element, &key, params)? {
                        Some(v) => items.push(v),
                        None => break,
                    }
                }
                Ok((!items.is_empty() || params.contains_key(prefix))
                    .then_some(Value::Array(items)))
            }
            "map" => {
                let key_shape = def["key"]["shape"].as_str().unwrap_or("");
                let value_shape = def["value"]["shape"].as_str().unwrap_or("");
                let mut out = Map::new();
                for i in 1.. {
                    let entry = format!("{prefix}.entry.{i}");
                    let Some(key) = self.query_value(key_shape, &format!("{entry}.key"), params)?
                    else {
                        break;
                    };
                    let value = self
                        .query_value(value_shape, &format!("{entry}.value"), params)?
                        .unwrap_or(Value::Null);
                    out.insert(render(&key), value);
                }
                Ok((!out.is_empty()).then_some(Value::Object(out)))
            }
            _ => params
                .get(prefix)
                .map(|text| self.scalar_from_text(shape, text, &lower_first(prefix)))
                .transpose(),
        }
    }

    /// Checks a request (as [`Model::rest_input`] or [`Model::query_input`] built it) against
    /// the operation's input shape, as AWS does before anything else.
    pub fn validate(&self, operation: &str, input: &Value) -> Result<(), Invalid> {
        let Some(shape) = self.input_shape(operation) else {
            return Ok(());
        };
        let mut errors = Vec::new();
        self.walk(shape, input, "", Mode::Input, &mut errors)?;
        match errors.len() {
            0 => Ok(()),
            1 => Err(Invalid::Validation(format!(
                "1 validation error detected: {}",
                errors[0]
            ))),
            n => Err(Invalid::Validation(format!(
                "{n} validation errors detected: {}",
                errors.join("; ")
            ))),
        }
    }

    /// Checks a value against any shape as an input (the sandbox's seeds use it); same messages
    /// as [`Model::validate`].
    pub fn validate_shape(&self, shape: &str, value: &Value) -> Result<(), Invalid> {
        let mut errors = Vec::new();
        self.walk(shape, value, "", Mode::Input, &mut errors)?;
        match errors.len() {
            0 => Ok(()),
            1 => Err(Invalid::Validation(format!(
                "1 validation error detected: {}",
                errors[0]
            ))),
            n => Err(Invalid::Validation(format!(
                "{n} validation errors detected: {}",
                errors.join("; ")
            ))),
        }
    }

    /// What in an answer does not fit the operation's output shape: missing required members,
    /// wrong types, values outside an enum, members the model does not define. Empty when it fits.
    pub fn check_output(&self, operation: &str, output: &Value) -> Vec<String> {
        let Some(shape) = self.output_shape(operation) else {
            return match output {
                Value::Object(o) if o.is_empty() => Vec::new(),
                Value::Null => Vec::new(),
                other => vec![format!(
                    "{operation} has no output, but the answer is {other}"
                )],
            };
        };
        let mut problems = Vec::new();
        let _ = self.walk(shape, output, shape, Mode::Output, &mut problems);
        problems
    }

    /// Keeps only the members `shape` defines, recursively (an input block described through an
    /// output shape: a master user's password is not part of what DescribeDomain shows).
    pub fn project(&self, shape: &str, value: &Value) -> Value {
        let Some(def) = self.shape(shape) else {
            return value.clone();
        };
        match (def.get("type").and_then(Value::as_str), value) {
            (Some("structure"), Value::Object(obj)) => Value::Object(
                obj.iter()
                    .filter_map(|(k, v)| {
                        let member = self.member_shape(shape, k)?;
                        Some((k.clone(), self.project(member, v)))
                    })
                    .collect(),
            ),
            (Some("list"), Value::Array(items)) => {
                let element = def["member"]["shape"].as_str().unwrap_or("");
                Value::Array(items.iter().map(|v| self.project(element, v)).collect())
            }
            (Some("map"), Value::Object(obj)) => {
                let element = def["value"]["shape"].as_str().unwrap_or("");
                Value::Object(
                    obj.iter()
                        .map(|(k, v)| (k.clone(), self.project(element, v)))
                        .collect(),
                )
            }
            _ => value.clone(),
        }
    }

    fn walk(
        &self,
        shape: &str,
        value: &Value,
        path: &str,
        mode: Mode,
        errors: &mut Vec<String>,
    ) -> Result<(), Invalid> {
        let Some(def) = self.shape(shape) else {
            return Ok(());
        };
        let kind = def.get("type").and_then(Value::as_str).unwrap_or("");
        let mismatch = |expected: &str| -> Result<(), Invalid> {
            let message = match value {
                Value::Object(_) => {
                    "Start of structure or map found where not expected.".to_owned()
                }
                Value::Array(_) => "Start of list found where not expected".to_owned(),
                other => format!("{} can not be converted to {expected}", token(other)),
            };
            Err(Invalid::Serialization(message))
        };
        let type_error = |errors: &mut Vec<String>, expected: &str| {
            errors.push(format!("{path}: expected {expected}, found {value}"));
        };
        match kind {
            "structure" => {
                let Value::Object(obj) = value else {
                    if mode == Mode::Input {
                        return mismatch("a structure");
                    }
                    type_error(errors, "a structure");
                    return Ok(());
                };
                let members = def
                    .get("members")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let required: Vec<&str> = def
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                for (name, m) in &members {
                    let child = match mode {
                        Mode::Input => join(path, &lower_first(name)),
                        Mode::Output => join(path, name),
                    };
                    let member_value = obj.get(name).filter(|v| !v.is_null());
                    match member_value {
                        None if required.contains(&name.as_str()) => match mode {
                            Mode::Input => errors.push(violation(
                                &Value::Null,
                                &child,
                                "Member must not be null",
                            )),
                            Mode::Output => {
                                errors.push(format!("{child}: required member missing"))
                            }
                        },
                        None => {}
                        Some(v) => {
                            self.walk(m["shape"].as_str().unwrap_or(""), v, &child, mode, errors)?
                        }
                    }
                }
                if mode == Mode::Output {
                    for key in obj.keys().filter(|k| !members.contains_key(*k)) {
                        errors.push(format!("{}: not a member of {shape}", join(path, key)));
                    }
                }
            }
            "list" => {
                let Value::Array(items) = value else {
                    if mode == Mode::Input {
                        return mismatch("a list");
                    }
                    type_error(errors, "a list");
                    return Ok(());
                };
                if mode == Mode::Input {
                    self.length(def, items.len(), value, path, errors);
                }
                let element = def["member"]["shape"].as_str().unwrap_or("");
                for (i, item) in items.iter().enumerate() {
                    let child = match mode {
                        Mode::Input => format!("{path}.{}.member", i + 1),
                        Mode::Output => format!("{path}[{i}]"),
                    };
                    self.walk(element, item, &child, mode, errors)?;
                }
            }
            "map" => {
                let Value::Object(obj) = value else {
                    if mode == Mode::Input {
                        return mismatch("a map");
                    }
                    type_error(errors, "a map");
                    return Ok(());
                };
                let key_shape = def["key"]["shape"].as_str().unwrap_or("");
                let value_shape = def["value"]["shape"].as_str().unwrap_or("");
                if mode == Mode::Input {
                    self.length(def, obj.len(), value, path, errors);
                    let mut key_errors = Vec::new();
                    for key in obj.keys() {
                        self.scalar_constraints(
                            key_shape,
                            &Value::String(key.clone()),
                            path,
                            &mut key_errors,
                        );
                    }
                    if let Some(first) = key_errors.first() {
                        let constraint = first
                            .split("failed to satisfy constraint: ")
                            .nth(1)
                            .unwrap_or(first);
                        errors.push(violation(
                            value,
                            path,
                            &format!("Map keys must satisfy constraint: [{constraint}]"),
                        ));
                    }
                } else {
                    for key in obj.keys() {
                        if let Some(allowed) = self.enum_values(key_shape)
                            && !allowed.contains(&key.as_str())
                        {
                            errors.push(format!("{path}: key {key:?} is not one of {allowed:?}"));
                        }
                    }
                }
                for (k, v) in obj {
                    self.walk(value_shape, v, &format!("{path}.{k}"), mode, errors)?;
                }
            }
            "string" => {
                if !value.is_string() {
                    if mode == Mode::Input {
                        return mismatch("a String");
                    }
                    type_error(errors, "a string");
                    return Ok(());
                }
                match mode {
                    Mode::Input => self.scalar_constraints(shape, value, path, errors),
                    Mode::Output => {
                        if let Some(allowed) = self.enum_values(shape)
                            && !allowed.contains(&value.as_str().unwrap_or(""))
                        {
                            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
                        }
                    }
                }
            }
            "integer" | "long" => {
                let integral =
                    value.as_i64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0);
                if !integral {
                    if mode == Mode::Input {
                        return mismatch(if kind == "integer" {
                            "an Integer"
                        } else {
                            "a Long"
                        });
                    }
                    type_error(errors, "an integer");
                    return Ok(());
                }
                if mode == Mode::Input {
                    self.scalar_constraints(shape, value, path, errors);
                }
            }
            "double" | "float" => {
                if !value.is_number() {
                    if mode == Mode::Input {
                        return mismatch("a Double");
                    }
                    type_error(errors, "a number");
                    return Ok(());
                }
                if mode == Mode::Input {
                    self.scalar_constraints(shape, value, path, errors);
                }
            }
            "boolean" if !value.is_boolean() => {
                if mode == Mode::Input {
                    return mismatch("a Boolean");
                }
                type_error(errors, "a boolean");
            }
            "timestamp" => {
                // REST-JSON writes timestamps as epoch seconds; a string is read as ISO 8601.
                let ok = value.is_number() || (mode == Mode::Input && value.is_string());
                if !ok {
                    if mode == Mode::Input {
                        return mismatch("a Timestamp");
                    }
                    type_error(errors, "epoch seconds");
                }
            }
            "blob" if !value.is_string() => {
                if mode == Mode::Input {
                    return mismatch("a ByteBuffer");
                }
                type_error(errors, "base64 text");
            }
            _ => {}
        }
        Ok(())
    }

    fn length(
        &self,
        def: &Map<String, Value>,
        len: usize,
        value: &Value,
        path: &str,
        errors: &mut Vec<String>,
    ) {
        if let Some(min) = bound(def, "min")
            && (len as f64) < min
        {
            errors.push(violation(
                value,
                path,
                &format!(
                    "Member must have length greater than or equal to {}",
                    show_bound(min)
                ),
            ));
        }
        if let Some(max) = bound(def, "max")
            && (len as f64) > max
        {
            errors.push(violation(
                value,
                path,
                &format!(
                    "Member must have length less than or equal to {}",
                    show_bound(max)
                ),
            ));
        }
    }

    /// Length, pattern and enum of a string; range of a number.
    fn scalar_constraints(&self, shape: &str, value: &Value, path: &str, errors: &mut Vec<String>) {
        let Some(def) = self.shape(shape) else {
            return;
        };
        match value {
            Value::String(s) => {
                self.length(def, s.encode_utf16().count(), value, path, errors);
                if let Some(pattern) = def.get("pattern").and_then(Value::as_str)
                    && let Some(re) = self.regex(pattern)
                    && !re.is_match(s).unwrap_or(true)
                {
                    errors.push(violation(
                        value,
                        path,
                        &format!("Member must satisfy regular expression pattern: {pattern}"),
                    ));
                }
                if let Some(allowed) = self.enum_values(shape)
                    && !allowed.contains(&s.as_str())
                {
                    errors.push(violation(
                        value,
                        path,
                        &format!(
                            "Member must satisfy enum value set: [{}]",
                            allowed.join(", ")
                        ),
                    ));
                }
            }
            Value::Number(n) => {
                let n = n.as_f64().unwrap_or(0.0);
                if let Some(min) = bound(def, "min")
                    && n < min
                {
                    errors.push(violation(
                        value,
                        path,
                        &format!(
                            "Member must have value greater than or equal to {}",
                            show_bound(min)
                        ),
                    ));
                }
                if let Some(max) = bound(def, "max")
                    && n > max
                {
                    errors.push(violation(
                        value,
                        path,
                        &format!(
                            "Member must have value less than or equal to {}",
                            show_bound(max)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_headers() -> http::HeaderMap {
        http::HeaderMap::new()
    }

    #[test]
    fn routes_come_from_the_request_uris() {
        let os = opensearch();
        let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect()
        };
        let (op, labels) = os
            .route("GET", "/2021-01-01/opensearch/domain/logs", &[])
            .unwrap();
        assert_eq!(
            (op.as_str(), labels["DomainName"].as_str()),
            ("DescribeDomain", "logs")
        );
        let (op, _) = os
            .route("GET", "/2021-01-01/opensearch/domain/logs/config", &[])
            .unwrap();
        assert_eq!(op, "DescribeDomainConfig");
        let (op, _) = os
            .route("POST", "/2021-01-01/opensearch/domain/logs/config", &[])
            .unwrap();
        assert_eq!(op, "UpdateDomainConfig");
        let (op, _) = os
            .route("GET", "/2021-01-01/tags/", &q(&[("arn", "x")]))
            .unwrap();
        assert_eq!(op, "ListTags");
        let (op, _) = os.route("GET", "/2021-01-01/domain", &[]).unwrap();
        assert_eq!(op, "ListDomainNames");
        assert!(os.route("GET", "/2021-01-01/nothing/here", &[]).is_none());
    }

    #[test]
    fn validation_messages_are_aws_words() {
        let os = opensearch();
        let input = os
            .rest_input(
                "CreateDomain",
                &BTreeMap::new(),
                &[],
                &no_headers(),
                &json!({"DomainName": "Bad_Name", "ClusterConfig": {"InstanceType": "huge.search"}, "OffPeakWindowOptions": {"OffPeakWindow": {"WindowStartTime": {"Hours": 24, "Minutes": 0}}}}),
            )
            .unwrap();
        let Err(Invalid::Validation(message)) = os.validate("CreateDomain", &input) else {
            panic!("invalid input accepted");
        };
        assert!(
            message.starts_with("3 validation errors detected: "),
            "{message}"
        );
        assert!(message.contains("Value 'Bad_Name' at 'domainName' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-z][a-z0-9\\-]+"), "{message}");
        assert!(message.contains("Value '24' at 'offPeakWindowOptions.offPeakWindow.windowStartTime.hours' failed to satisfy constraint: Member must have value less than or equal to 23"), "{message}");
        assert!(message.contains("Value 'huge.search' at 'clusterConfig.instanceType' failed to satisfy constraint: Member must satisfy enum value set: [m3.medium.search, "), "{message}");

        let missing = os
            .rest_input(
                "CreateDomain",
                &BTreeMap::new(),
                &[],
                &no_headers(),
                &json!({}),
            )
            .unwrap();
        assert_eq!(
            os.validate("CreateDomain", &missing),
            Err(Invalid::Validation("1 validation error detected: Value null at 'domainName' failed to satisfy constraint: Member must not be null".into()))
        );
        let wrong_type = os
            .rest_input(
                "CreateDomain",
                &BTreeMap::new(),
                &[],
                &no_headers(),
                &json!({"DomainName": "ok-name", "ClusterConfig": {"InstanceCount": "three"}}),
            )
            .unwrap();
        assert_eq!(
            os.validate("CreateDomain", &wrong_type),
            Err(Invalid::Serialization(
                "STRING_VALUE can not be converted to an Integer".into()
            ))
        );
        let tags = os
            .rest_input(
                "AddTags",
                &BTreeMap::new(),
                &[],
                &no_headers(),
                &json!({"ARN": "arn:aws:es:us-east-1:1:domain/x", "TagList": [{"Key": ""}]}),
            )
            .unwrap();
        let Err(Invalid::Validation(message)) = os.validate("AddTags", &tags) else {
            panic!("empty tag key accepted");
        };
        assert!(message.contains("Value null at 'tagList.1.member.value' failed to satisfy constraint: Member must not be null"), "{message}");
        assert!(message.contains("Value '' at 'tagList.1.member.key' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{message}");
    }

    #[test]
    fn map_keys_are_checked_as_one_constraint() {
        let os = opensearch();
        let input =
            json!({"DomainName": "logs", "LogPublishingOptions": {"ALL_LOGS": {"Enabled": true}}});
        let Err(Invalid::Validation(message)) = os.validate("CreateDomain", &input) else {
            panic!("unknown log type accepted");
        };
        assert!(message.starts_with("1 validation error detected: Value '{ALL_LOGS={Enabled=true}}' at 'logPublishingOptions' failed to satisfy constraint: Map keys must satisfy constraint: [Member must satisfy enum value set: [INDEX_SLOW_LOGS, SEARCH_SLOW_LOGS, ES_APPLICATION_LOGS, AUDIT_LOGS]]"), "{message}");
    }

    #[test]
    fn query_forms_are_read_by_shape() {
        let iam = iam();
        let params: BTreeMap<String, String> = [
            ("Action", "CreateRole"),
            ("RoleName", "has space"),
            ("AssumeRolePolicyDocument", "{}"),
            ("MaxSessionDuration", "60"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "search"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let input = iam.query_input("CreateRole", &params).unwrap();
        assert_eq!(input["Tags"], json!([{"Key": "team", "Value": "search"}]));
        assert_eq!(input["MaxSessionDuration"], json!(60));
        let Err(Invalid::Validation(message)) = iam.validate("CreateRole", &input) else {
            panic!("bad role accepted");
        };
        assert_eq!(
            message,
            "2 validation errors detected: Value '60' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600; Value 'has space' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
    }

    #[test]
    fn every_pattern_of_both_models_compiles() {
        for model in [opensearch(), iam()] {
            let broken: Vec<String> = model
                .shapes
                .values()
                .filter_map(|s| s.get("pattern").and_then(Value::as_str))
                .filter(|p| !model.pattern_compiles(p))
                .map(str::to_owned)
                .collect();
            assert!(
                broken.is_empty(),
                "patterns the sandbox cannot check: {broken:#?}"
            );
        }
    }

    #[test]
    fn outputs_are_checked_for_members_types_and_enums() {
        let os = opensearch();
        let problems = os.check_output(
            "DescribeDomain",
            &json!({"DomainStatus": {"DomainId": "1/x", "DomainName": "x", "ClusterConfig": {"InstanceType": "nope"}, "Invented": 1, "Processing": "yes"}}),
        );
        assert!(
            problems.contains(
                &"DescribeDomainResponse.DomainStatus.ARN: required member missing".to_owned()
            ),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("ClusterConfig.InstanceType: \"nope\" is not one of")),
            "{problems:#?}"
        );
        assert!(
            problems.contains(
                &"DescribeDomainResponse.DomainStatus.Invented: not a member of DomainStatus"
                    .to_owned()
            ),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p
                .starts_with("DescribeDomainResponse.DomainStatus.Processing: expected a boolean")),
            "{problems:#?}"
        );
    }

    #[test]
    fn projection_drops_what_the_output_shape_does_not_have() {
        let os = opensearch();
        let input = json!({"Enabled": true, "InternalUserDatabaseEnabled": true, "MasterUserOptions": {"MasterUserName": "admin", "MasterUserPassword": "Secret-1"}});
        assert_eq!(
            os.project("AdvancedSecurityOptions", &input),
            json!({"Enabled": true, "InternalUserDatabaseEnabled": true})
        );
    }
}
