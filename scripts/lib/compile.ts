/**
 * @module
 * One `bun build --compile` of the product, for this machine (scripts/build.ts) or for another platform
 * (scripts/release.ts):
 *
 * - hashing children are the binary itself, started with a hidden first argument (core/hash-child.ts);
 * - the version and the git commit are baked in with --define (`--version` prints both);
 * - `.env` and bunfig.toml in the user's working directory are not auto-loaded by the binary;
 * - --bytecode (ESM) precompiles the JavaScript, which makes a cold start several times faster.
 */
import { $ } from 'bun'
import { join } from 'node:path'
import pkg from '../../package.json' with { type: 'json' }

export const ROOT = join(import.meta.dir, '..', '..')
export const VERSION = pkg.version

/** The git commit of the working tree, with `-dirty` when tracked files changed. */
export async function gitCommit(): Promise<string> {
	const commit = (await $`git rev-parse --short=12 HEAD`.cwd(ROOT).nothrow().quiet().text()).trim() || 'unknown'
	const dirty = (await $`git status --porcelain --untracked-files=no`.cwd(ROOT).nothrow().quiet().text()).trim() ? '-dirty' : ''
	return commit + dirty
}

/**
 * Compile `src/main.ts` to `outfile`; `target` is a Bun target such as `bun-linux-arm64` (its runtime is
 * fetched from the npm registry the first time), or this machine when absent.
 */
export async function compile(outfile: string, options: { commit: string; target?: string }): Promise<void> {
	const args = [
		'build', '--compile', '--bytecode', '--splitting', '--format=esm', '--minify-whitespace', '--minify-syntax',
		`--target=${options.target ?? 'bun'}`,
		'--no-compile-autoload-dotenv', '--no-compile-autoload-bunfig',
		'--define', `BUILD_VERSION=${JSON.stringify(VERSION)}`,
		'--define', `BUILD_COMMIT=${JSON.stringify(options.commit)}`,
		'--define', 'process.env.NODE_ENV="production"',
		'src/main.ts', '--outfile', outfile
	]
	const built = await $`${process.execPath} ${args}`.cwd(ROOT).nothrow().quiet()
	if (built.exitCode !== 0) throw new Error(`bun build ${options.target ?? ''} failed:\n${built.stderr.toString()}${built.stdout.toString()}`)
}
