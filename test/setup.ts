/**
 * Preloaded by `bun test` (bunfig.toml): makes sure dist/imageworks-loader is built from the current
 * sources, so tests that spawn the binary test the code the tests import.
 */
import { existsSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, BINARY } from './helpers/paths.ts'

function newestSource(dir: string): number {
	let newest = 0
	for (const entry of readdirSync(dir, { withFileTypes: true })) {
		const path = join(dir, entry.name)
		newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs)
	}
	return newest
}

const stale = !existsSync(BINARY) || statSync(BINARY).mtimeMs < Math.max(newestSource(join(ROOT, 'src')), statSync(join(ROOT, 'package.json')).mtimeMs)
if (stale) {
	const build = Bun.spawnSync([process.execPath, 'scripts/build.ts'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
	if (build.exitCode !== 0) {
		throw new Error(`building ${BINARY} failed:\n${build.stdout.toString()}${build.stderr.toString()}`)
	}
}
