//! XML documents of the IVOA protocols (UWS job lists and jobs, VOSI resources) written with
//! quick-xml: every name, attribute and text is escaped by the writer, so nothing a client
//! sent (parameters, forwarded hosts) can break out of the document. (VOTables have their
//! own streaming encoder, [`super::votable`].)

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

/// A document being written, indented by two spaces.
pub struct Xml {
    w: Writer<Vec<u8>>,
}

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

impl Xml {
    /// Starts a document with its XML declaration.
    pub fn new() -> Self {
        let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
        // Writing to a Vec cannot fail.
        let _ = w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        Xml { w }
    }

    fn start(name: &str, attrs: &[(&str, &str)]) -> BytesStart<'static> {
        let mut s = BytesStart::new(name.to_string());
        for (k, v) in attrs {
            s.push_attribute((*k, *v));
        }
        s
    }

    /// `<name attrs...>`.
    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        let _ = self.w.write_event(Event::Start(Self::start(name, attrs)));
        self
    }

    /// `</name>`.
    pub fn close(&mut self, name: &str) -> &mut Self {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name attrs.../>`.
    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        let _ = self.w.write_event(Event::Empty(Self::start(name, attrs)));
        self
    }

    /// `<name attrs...>text</name>`.
    pub fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> &mut Self {
        let _ = self.w.write_event(Event::Start(Self::start(name, attrs)));
        let _ = self.w.write_event(Event::Text(BytesText::new(text)));
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
        self
    }

    /// The document.
    pub fn finish(self) -> String {
        let mut s = String::from_utf8(self.w.into_inner()).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_a_client_sends_is_escaped() {
        let mut x = Xml::new();
        x.open("a", &[("href", "http://h/\"><b x=\"")])
            .text("p", &[("id", "<q>")], "</a><evil/>&")
            .empty("e", &[])
            .close("a");
        let s = x.finish();
        assert!(s.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
        assert!(!s.contains("<evil/>") && !s.contains("\"><b"), "{s}");
        assert!(s.contains("&lt;/a&gt;&lt;evil/&gt;&amp;"), "{s}");
    }
}
