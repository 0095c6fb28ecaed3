// The HTML report's stylesheet and script, kept apart from the C++ that lays out the page.
#ifndef BREAKFIX_REPORT_HTML_ASSETS_H_
#define BREAKFIX_REPORT_HTML_ASSETS_H_

namespace breakfix {

// Inline CSS for the whole page.
extern const char kHtmlReportCss[];
// The conversation browser. It reads the JSON blocks #bf-index and #bf-chunk-N and builds every
// element with createElement/textContent: no data ever reaches innerHTML, a URL or an attribute
// other than a class or a numeric value.
extern const char kHtmlReportScript[];

}  // namespace breakfix

#endif  // BREAKFIX_REPORT_HTML_ASSETS_H_
