// Queries explained: for a query of several terms, what each term brought (its nearest words),
// what a subtracted one took away (the words the query moved away from), and on each tile the
// term that result matches best. The server computes it (docs/protocol.md, "explain").
"use strict";

const wordList = (words) => words.map(([word]) => word).join(", ");

function renderExplanation(explanation) {
  const terms = explanation ? explanation.terms : [];
  ui.explain.hidden = terms.length < 2;
  if (ui.explain.hidden) {
    ui.explainTerms.replaceChildren();
    return;
  }
  const bestCounts = terms.map((_, index) =>
    explanation.results.filter((match) => match.best === index).length);
  ui.explainTerms.replaceChildren(...terms.map((term, index) => el("li", {},
    el("span", { class: "explain-term" }, fromServer(term.term)),
    term.removed
      ? el("span", {}, ` took away: ${wordList(term.removed) || "nothing in particular"}`)
      : el("span", {}, ` brought: ${wordList(term.nearest_words)}`),
    term.removed ? null : el("span", { class: "muted small" },
      ` · best match of ${bestCounts[index]} result${bestCounts[index] === 1 ? "" : "s"}`))));
  labelTiles(terms, explanation.results);
}

// Each tile names the term its picture is closest to ("≈ car")
function labelTiles(terms, matches) {
  tiles().forEach((tile, index) => {
    const match = matches[index];
    if (!match) return;
    const label = fromServer(terms[match.best].term);
    tile.querySelector(".meta").append(el("span", {
      class: "best-term", title: `closest to ${label} (cosine ${match.cosines[match.best]})`,
    }, `≈ ${label}`));
  });
}
