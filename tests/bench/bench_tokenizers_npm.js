// Encode throughput of Hugging Face tokenizers (the Rust library, through its npm
// package) on the same corpora as bench_tokenizer.c, for comparison. Prints one line
//   npm <name> <corpus> <mode> <MB/s>
// per mode: "seq" awaits encode() document by document; "batch" is one encodeBatch
// call (run with RAYON_NUM_THREADS=1 for one core). Usage:
//   NODE_PATH=<dir>/node_modules node bench_tokenizers_npm.js NAME tokenizer.json corpus.jsonl...
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

async function main() {
  const [name, tokPath, ...corpora] = process.argv.slice(2);
  const tok = Tokenizer.fromFile(tokPath);
  for (const corpus of corpora) {
    const texts = fs.readFileSync(corpus, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l).text);
    const bytes = texts.reduce((s, t) => s + Buffer.byteLength(t, 'utf8'), 0);
    const label = path.basename(corpus);
    for (const mode of ['seq', 'batch']) {
      let best = 0;
      for (let rep = 0; rep < 3; rep++) { // the first pass warms the library's word cache
        const t0 = process.hrtime.bigint();
        if (mode === 'seq') for (const t of texts) await tok.encode(t, null, { addSpecialTokens: false });
        else await tok.encodeBatch(texts, { addSpecialTokens: false });
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        best = Math.max(best, bytes / 1e6 / s);
      }
      console.log(`npm ${name} ${label} ${mode} ${best.toFixed(2)}`);
    }
  }
}
main().catch((e) => { console.error('bench_tokenizers_npm: ' + e.message); process.exit(1); });
