// Builds the files that the Go binary embeds (../pb_public):
//   t.js                    the tracker, minified (source: src/tracker/t.js)
//   index.html              the dashboard's page, pointing at hashed assets
//   assets/app-HASH.js|css  the dashboard, with the PocketBase SDK and cobe bundled in
//
// The output depends only on the sources and the locked package versions, so
// `node build.mjs --check` can tell whether the committed files are current.
import * as esbuild from 'esbuild';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const here = dirname(fileURLToPath(import.meta.url));
const target = join(here, '..', 'pb_public');
const check = process.argv.includes('--check');
const out = check ? mkdtempSync(join(tmpdir(), 'pl-web-')) : target;

// Only the generated files are replaced; embed.go and friends stay.
function clean(dir) {
  rmSync(join(dir, 'assets'), { recursive: true, force: true });
  for (const f of ['t.js', 'index.html']) rmSync(join(dir, f), { force: true });
}

async function build(dir) {
  clean(dir);
  await esbuild.build({
    entryPoints: [join(here, 'src/tracker/t.js')],
    outfile: join(dir, 't.js'),
    minify: true,
    target: 'es2017',
    legalComments: 'none',
    logLevel: 'warning',
  });

  const result = await esbuild.build({
    entryPoints: { app: join(here, 'src/app/main.js') },
    outdir: join(dir, 'assets'),
    entryNames: '[name]-[hash]',
    assetNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    minify: true,
    sourcemap: false,
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });

  const outputs = Object.keys(result.metafile.outputs).map((f) => relative(dir, f).split('\\').join('/'));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  const html = readFileSync(join(here, 'src/index.html'), 'utf8')
    .replace('%CSS%', css)
    .replace('%JS%', js);
  writeFileSync(join(dir, 'index.html'), html);
  cpSync(join(here, 'src/static'), dir, { recursive: true });
}

function listing(dir) {
  const files = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!e.name.endsWith('.go')) files.push(relative(dir, p));
    }
  };
  walk(dir);
  return files.sort();
}

await build(out);

if (check) {
  const want = listing(out);
  const have = listing(target);
  const stale = want.filter((f) => {
    try {
      return !readFileSync(join(out, f)).equals(readFileSync(join(target, f)));
    } catch {
      return true;
    }
  });
  const extra = have.filter((f) => !want.includes(f));
  rmSync(out, { recursive: true, force: true });
  if (stale.length || extra.length) {
    console.error('pb_public is out of date; run scripts/build-web.sh:', [...stale, ...extra].join(', '));
    process.exit(1);
  }
  console.log('pb_public is up to date');
} else {
  const t = readFileSync(join(target, 't.js'));
  console.log(`t.js: ${t.length} bytes, ${gzipSync(t, { level: 9 }).length} bytes gzipped`);
  for (const f of listing(target).filter((f) => f.startsWith('assets/'))) {
    const b = readFileSync(join(target, f));
    console.log(`${f}: ${b.length} bytes, ${gzipSync(b, { level: 9 }).length} bytes gzipped`);
  }
}
