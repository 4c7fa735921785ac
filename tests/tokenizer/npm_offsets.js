// Hugging Face tokenizers (the Rust library, through its npm package) on each
// text of a JSON list: one JSON line per text with its ids, tokens and offsets,
// the offsets turned from the package's character indices into bytes of the
// UTF-8 text (what `tlens tokenize --tokens` prints). Usage:
//   NODE_PATH=<dir>/node_modules node npm_offsets.js tokenizer.json texts.json
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

// byte offset of each character index of text (code points, as the Rust library counts)
function byteIndex(text) {
  const at = [0];
  for (const ch of text) at.push(at[at.length - 1] + Buffer.byteLength(ch, 'utf8'));
  return at;
}

async function main() {
  const [tokPath, textsPath] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  for (const text of JSON.parse(fs.readFileSync(textsPath, 'utf8'))) {
    const e = await tok.encode(text, null, { addSpecialTokens: true });
    const at = byteIndex(text);
    const offsets = e.getOffsets().map(([a, b]) => [at[a], at[b]]);
    console.log(JSON.stringify({ ids: Array.from(e.getIds()), tokens: e.getTokens(), offsets }));
  }
}
main().catch((err) => { console.error(err.message); process.exit(1); });
