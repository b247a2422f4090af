// Writes a copy of a tokenizer.json with five added tokens that exercise the added-token flags:
// "[SW]" single_word, "<L>" lstrip, "<R>" rstrip, "<LR>" lstrip+rstrip, "nrm" normalized (not special).
// The corpus contains these strings in several contexts. Usage: node flag-variant.mjs IN_JSON OUT_JSON
import { readFileSync, writeFileSync } from "node:fs";

const [inPath, outPath] = process.argv.slice(2);
const tokenizer = JSON.parse(readFileSync(inPath, "utf8"));
let next = [...Object.values(tokenizer.model.vocab), ...tokenizer.added_tokens.map(t => t.id)].reduce((a, b) => Math.max(a, b)) + 1;
const add = (content, flags) => tokenizer.added_tokens.push({
  id: next++, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true, ...flags,
});
add("[SW]", { single_word: true });
add("<L>", { lstrip: true });
add("<R>", { rstrip: true });
add("<LR>", { lstrip: true, rstrip: true });
add("nrm", { normalized: true, special: false });
writeFileSync(outPath, JSON.stringify(tokenizer));
