//! Writing HTML: [`esc`] escapes every interpolated value, [`layout`] wraps a page's body in
//! the shared shell (navigation, stylesheet, script).

use std::fmt::{self, Display, Write as _};

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use super::session::Viewer;

/// `text` escaped for HTML text and double-quoted attribute values.
pub(crate) fn esc<T: Display>(text: T) -> Escaped<T> {
    Escaped(text)
}

/// A value written escaped (see [`esc`]).
pub(crate) struct Escaped<T>(T);

impl<T: Display> Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = EscapingWriter(f);
        write!(out, "{}", self.0)
    }
}

struct EscapingWriter<'a, 'b>(&'a mut fmt::Formatter<'b>);

impl fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, b) in s.bytes().enumerate() {
            let replacement = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            self.0.write_str(replacement)?;
            start = i + 1;
        }
        self.0.write_str(&s[start..])
    }
}

/// `value` percent-encoded for a query string.
pub(crate) fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// A page: a title and its body, rendered inside [`layout`].
pub(crate) struct Page {
    pub(crate) status: StatusCode,
    pub(crate) title: String,
    pub(crate) body: String,
}

impl Page {
    /// A 200 page.
    pub(crate) fn new(title: impl Into<String>, body: String) -> Self {
        Self {
            status: StatusCode::OK,
            title: title.into(),
            body,
        }
    }

    /// The page in the shell, as a response.
    pub(crate) fn render(self, base: &str, viewer: Option<&Viewer>) -> Response {
        let html = layout(base, viewer, &self.title, &self.body);
        html_response(self.status, html)
    }
}

/// An HTML response (security headers are added by the router's layer).
pub(crate) fn html_response(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The shared shell around a page's body.
pub(crate) fn layout(base: &str, viewer: Option<&Viewer>, title: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · hookrelay</title>\
         <link rel=\"stylesheet\" href=\"{base}/assets/dashboard.css\">\
         <script src=\"{base}/assets/dashboard.js\" defer></script></head><body>\
         <a class=\"skip\" href=\"#main\">Skip to content</a><header class=\"top\">\
         <a class=\"brand\" href=\"{base}/endpoints\">hookrelay</a>",
        title = esc(title),
        base = esc(base),
    );
    if let Some(viewer) = viewer {
        let _ = write!(
            out,
            "<nav aria-label=\"Main\"><a href=\"{base}/endpoints\">Endpoints</a>\
             <a href=\"{base}/deliveries\">Deliveries</a><a href=\"{base}/charts\">Charts</a>",
            base = esc(base)
        );
        if viewer.principal.owner().is_none() {
            let _ = write!(
                out,
                "<a href=\"{base}/inbox\">Inbox</a><a href=\"{base}/portal-links\">Portal links</a>",
                base = esc(base)
            );
        }
        let who = match viewer.principal.owner() {
            None => "operator".to_owned(),
            Some(owner) => format!("customer {}", owner.as_str()),
        };
        let _ = write!(
            out,
            "</nav><form class=\"signout\" method=\"post\" action=\"{base}/sign-out\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <span class=\"who\">{who}</span> <button type=\"submit\">Sign out</button></form>",
            base = esc(base),
            csrf = esc(&viewer.csrf),
            who = esc(who),
        );
    }
    let _ = write!(
        out,
        "</header><main id=\"main\"><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    out
}

/// A hidden CSRF field for a form of `viewer`'s session.
pub(crate) fn csrf_field(viewer: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&viewer.csrf)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\"").to_string(),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(esc("plain é").to_string(), "plain é");
        assert_eq!(esc(42).to_string(), "42");
    }
}
