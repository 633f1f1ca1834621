// Renders the book's formulas with KaTeX, in the browser, from the same markdown GitHub renders:
//
//   inline   $`\log D(x)`$        (a code span between two dollar signs)
//   display  ```math              (a fenced block whose language is math)
//            V(D, G) = ...
//            ```
//
// Markdown leaves a code span's backslashes, underscores and stars alone, so the LaTeX reaches
// KaTeX exactly as written. A formula KaTeX cannot parse is shown in red with the error
// (throwOnError: false), and the book's browser test fails on it.
(function () {
  "use strict";
  function renderInline(code) {
    var before = code.previousSibling;
    var after = code.nextSibling;
    if (!before || !after || before.nodeType !== Node.TEXT_NODE || after.nodeType !== Node.TEXT_NODE) {
      return;
    }
    if (!before.data.endsWith("$") || !after.data.startsWith("$")) {
      return;
    }
    var span = document.createElement("span");
    span.className = "math math-inline";
    katex.render(code.textContent, span, { throwOnError: false, displayMode: false });
    before.data = before.data.slice(0, -1);
    after.data = after.data.slice(1);
    code.replaceWith(span);
  }
  function renderDisplay(code) {
    var block = document.createElement("div");
    block.className = "math math-display";
    katex.render(code.textContent, block, { throwOnError: false, displayMode: true });
    code.closest("pre").replaceWith(block);
  }
  function renderAll() {
    document.querySelectorAll("pre > code.language-math").forEach(renderDisplay);
    document.querySelectorAll("main code").forEach(function (code) {
      if (!code.closest("pre")) {
        renderInline(code);
      }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
})();
