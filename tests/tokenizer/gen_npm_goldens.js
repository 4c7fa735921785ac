// Writes the extra tokenizer goldens in tests/data/ with Hugging Face tokenizers
// (the Rust library, through its npm package) over every line of the fixture corpora
// and of tests/data/tokenizer_fuzz_text.jsonl (made by gen_fuzz_text.py); and the
// flags tokenizer of gen_flags_tokenizer.py on its own text.
//
//   cd /tmp/tok && npm install tokenizers@0.23.2
//   NODE_PATH=/tmp/tok/node_modules node tests/tokenizer/gen_npm_goldens.js $FIXTURES tests/data [--full DIR]
//
// Each output line is "<corpus index> <line number> <count> <hash>": count is the
// number of ids without special tokens, hash the first 16 hex digits of the
// sha256 of "<ids>|<ids_no_special>|<decoded>" (ids comma-separated; decoded =
// decode(ids_no_special), special tokens kept). --full DIR also writes the
// complete records as JSON lines, for inspecting a mismatch.
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { Tokenizer } = require('tokenizers');

// paths under the fixtures folder, or under the repository root with 'src:'
const CORPORA = ['data/pile_text.jsonl', 'data/tinystories_train_head.jsonl', 'data/tinystories_valid_head.jsonl',
  'src:tests/data/tokenizer_fuzz_text.jsonl'];
// name -> tokenizer.json and the corpora it is run on
const JOBS = [
  ...['gpt2', 'neox-20b', 'stories260k'].map((n) => ({ name: n, tok: 'tokenizers/' + n + '/tokenizer.json', corpora: CORPORA })),
  { name: 'flags', tok: 'src:tests/data/tokenizer_flags/tokenizer.json', corpora: ['src:tests/data/tokenizer_flags_text.jsonl'] },
];
const resolve = (fixtures, p) => (p.startsWith('src:') ? path.join(__dirname, '..', '..', p.slice(4)) : path.join(fixtures, p));

async function main() {
  const [fixtures, outDir] = process.argv.slice(2, 4);
  const fullAt = process.argv.indexOf('--full');
  const fullDir = fullAt > 0 ? process.argv[fullAt + 1] : null;
  if (!fixtures || !outDir) throw new Error('usage: gen_npm_goldens.js FIXTURES OUTDIR [--full DIR]');
  for (const { name, tok: tokPath, corpora } of JOBS) {
    const tok = Tokenizer.fromFile(resolve(fixtures, tokPath));
    const out = ['# HF tokenizers 0.23.2 (npm) goldens for ' + tokPath + '; see tests/tokenizer/gen_npm_goldens.js'];
    corpora.forEach((c, i) => out.push('# corpus ' + i + ' ' + c));
    const full = [];
    for (let ci = 0; ci < corpora.length; ci++) {
      const lines = fs.readFileSync(resolve(fixtures, corpora[ci]), 'utf8').split('\n');
      for (let li = 0; li < lines.length; li++) {
        if (!lines[li]) continue;
        const text = JSON.parse(lines[li]).text;
        const ids = Array.from((await tok.encode(text, null, { addSpecialTokens: true })).getIds());
        const ns = Array.from((await tok.encode(text, null, { addSpecialTokens: false })).getIds());
        const decoded = await tok.decode(ns, false);
        const h = crypto.createHash('sha256').update(ids.join(',') + '|' + ns.join(',') + '|' + decoded, 'utf8');
        out.push(ci + ' ' + li + ' ' + ns.length + ' ' + h.digest('hex').slice(0, 16));
        if (fullDir) full.push(JSON.stringify({ corpus: ci, line: li, text, ids, ids_no_special: ns, decoded }));
      }
    }
    fs.writeFileSync(path.join(outDir, 'tokenizer_golden_' + name + '.txt'), out.join('\n') + '\n');
    if (fullDir) fs.writeFileSync(path.join(fullDir, 'full_' + name + '.jsonl'), full.join('\n') + '\n');
  }
}
main().catch((e) => { console.error('gen_npm_goldens: ' + e.message); process.exit(1); });
