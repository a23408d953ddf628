//! `/docs`: a browsable reference page rendered from the OpenAPI document on
//! the server, self-contained (no scripts, no external assets), so it works
//! on a machine with no internet access.

use std::fmt::Write as _;

use serde_json::Value;

/// The reference page of `document` (an OpenAPI 3 document as JSON).
pub fn render(document: &Value) -> String {
    let title = text(&document["info"]["title"]);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         h2{{margin-top:2.5rem;border-bottom:1px solid #ddd}}code,.path{{font-family:ui-monospace,monospace}}\
         .method{{display:inline-block;min-width:3.5rem;font-weight:bold;color:#0a5}}\
         table{{border-collapse:collapse;margin:.5rem 0}}td,th{{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}}</style>\
         </head><body><h1>{title}</h1><p>{}</p><p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI {}).</p>",
        text(&document["info"]["description"]),
        text(&document["openapi"]),
    );
    let Some(paths) = document["paths"].as_object() else {
        page.push_str("</body></html>");
        return page;
    };
    for (path, operations) in paths {
        let Some(operations) = operations.as_object() else {
            continue;
        };
        for (method, operation) in operations {
            let _ = write!(
                page,
                "<h2><span class=\"method\">{}</span> <span class=\"path\">{}</span></h2>",
                escape(&method.to_uppercase()),
                escape(path)
            );
            for key in ["summary", "description"] {
                if let Some(line) = operation[key].as_str() {
                    let _ = write!(page, "<p>{}</p>", escape(line));
                }
            }
            if let Some(parameters) = operation["parameters"].as_array() {
                page.push_str("<table><tr><th>parameter</th><th>in</th><th>required</th><th>description</th></tr>");
                for parameter in parameters {
                    let _ = write!(
                        page,
                        "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        text(&parameter["name"]),
                        text(&parameter["in"]),
                        if parameter["required"].as_bool() == Some(true) {
                            "yes"
                        } else {
                            "no"
                        },
                        text(&parameter["description"]),
                    );
                }
                page.push_str("</table>");
            }
            if let Some(responses) = operation["responses"].as_object() {
                page.push_str("<table><tr><th>status</th><th>meaning</th></tr>");
                for (status, response) in responses {
                    let _ = write!(
                        page,
                        "<tr><td>{}</td><td>{}</td></tr>",
                        escape(status),
                        text(&response["description"])
                    );
                }
                page.push_str("</table>");
            }
        }
    }
    page.push_str("</body></html>");
    page
}

fn text(value: &Value) -> String {
    escape(value.as_str().unwrap_or_default())
}

fn escape(raw: &str) -> String {
    raw.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_operation_its_parameters_and_responses_are_listed_escaped() {
        let page = render(&json!({
            "openapi": "3.1.0",
            "info": {"title": "T <1>", "description": "d"},
            "paths": {"/v1/x": {"get": {"description": "lists x",
                "parameters": [{"name": "limit", "in": "query", "required": false, "description": "rows"}],
                "responses": {"200": {"description": "ok"}, "400": {"description": "bad"}}}}}
        }));
        assert!(page.contains("T &lt;1&gt;"));
        assert!(page.contains("<span class=\"path\">/v1/x</span>"));
        assert!(page.contains("<code>limit</code>"));
        assert!(page.contains("<td>400</td><td>bad</td>"));
    }
}
