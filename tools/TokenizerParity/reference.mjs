// Reference side of the tokenizer parity suite: tokenizes every line of a corpus (one JSON string per line) with
// Hugging Face's own `tokenizers` (the npm binding of the Rust crate) and writes {ids, decoded} as JSON.
// Usage: node reference.mjs TOKENIZER_JSON CORPUS_JSONL OUT_JSON   (NODE_PATH must reach the installed `tokenizers`)
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";

const require = createRequire(process.env.NODE_PATH ? `${process.env.NODE_PATH}/` : import.meta.url);
const { Tokenizer } = require("tokenizers");
const [tokenizerPath, corpusPath, outPath] = process.argv.slice(2);
const corpus = readFileSync(corpusPath, "utf8").split("\n").filter(l => l.length > 0).map(l => JSON.parse(l));
const tokenizer = Tokenizer.fromFile(tokenizerPath);
const ids = [];
const decoded = [];
for (const text of corpus) {
  const encoding = await tokenizer.encode(text);   // add_special_tokens defaults to true: the post-processor's template applies
  const row = Array.from(encoding.getIds());
  ids.push(row);
  decoded.push(await tokenizer.decode(row, false));
}
writeFileSync(outPath, JSON.stringify({ ids, decoded }));
