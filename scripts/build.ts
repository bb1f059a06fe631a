/**
 * Build dist/imageworks-loader: one self-contained executable (`bun build --compile`).
 *
 * - hashing children are the binary itself, started with a hidden first argument (core/hash-child.ts);
 * - the version and the git commit are baked in with --define (`--version` prints both);
 * - `.env` and bunfig.toml in the user's working directory are not auto-loaded by the binary;
 * - --bytecode (ESM) precompiles the JavaScript, which makes a cold start several times faster.
 */
import { $ } from 'bun'
import pkg from '../package.json' with { type: 'json' }

const commit = (await $`git rev-parse --short=12 HEAD`.nothrow().quiet().text()).trim() || 'unknown'
const dirty = (await $`git status --porcelain --untracked-files=no`.nothrow().quiet().text()).trim() ? '-dirty' : ''
const outfile = process.argv[2] ?? 'dist/imageworks-loader'

const args = [
	'build', '--compile', '--bytecode', '--splitting', '--format=esm', '--minify-whitespace', '--minify-syntax', '--target=bun',
	'--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig',
	'--define', `BUILD_VERSION=${JSON.stringify(pkg.version)}`,
	'--define', `BUILD_COMMIT=${JSON.stringify(commit + dirty)}`,
	'--define', 'process.env.NODE_ENV="production"',
	'src/main.ts', '--outfile', outfile
]
await $`${process.execPath} ${args}`
console.log(`built ${outfile} (${pkg.version}, commit ${commit}${dirty})`)
