/**
 * `npm run release`: the single-binary downloads, cross-compiled into dist/release/, each named with the
 * version and platform (`imageworks-loader-0.2.0-linux-x64`, `...-windows-x64.exe`), and a `SHA256SUMS`
 * file in coreutils format (`sha256sum -c SHA256SUMS` checks them). Bun fetches each target's runtime
 * from the npm registry the first time.
 *
 *     bun scripts/release.ts                      # every platform
 *     bun scripts/release.ts linux-x64 darwin-arm64
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, VERSION, compile, gitCommit } from './lib/compile.ts'

/** Platform name in the file name -> Bun's compile target. */
export const PLATFORMS: Record<string, string> = {
	'linux-x64': 'bun-linux-x64',
	'linux-x64-baseline': 'bun-linux-x64-baseline', // CPUs without AVX2
	'linux-arm64': 'bun-linux-arm64',
	'linux-x64-musl': 'bun-linux-x64-musl', // Alpine
	'darwin-x64': 'bun-darwin-x64',
	'darwin-arm64': 'bun-darwin-arm64',
	'windows-x64': 'bun-windows-x64'
}

export const fileName = (platform: string) => `imageworks-loader-${VERSION}-${platform}${platform.startsWith('windows') ? '.exe' : ''}`

const wanted = process.argv.slice(2)
for (const p of wanted) if (!PLATFORMS[p]) throw new Error(`unknown platform ${p}: choose from ${Object.keys(PLATFORMS).join(', ')}`)
const platforms = wanted.length ? wanted : Object.keys(PLATFORMS)
const out = join(ROOT, 'dist', 'release')
rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
const commit = await gitCommit()
for (const platform of platforms) {
	const started = performance.now()
	await compile(join(out, fileName(platform)), { commit, target: PLATFORMS[platform] })
	console.log(`built ${fileName(platform)} in ${((performance.now() - started) / 1000).toFixed(1)} s`)
}
// Bun may leave build artefacts beside a cross-compiled binary: only the binaries are released.
const binaries = readdirSync(out)
	.filter((name) => name.startsWith('imageworks-loader-'))
	.sort()
const sums: string[] = []
for (const name of binaries) sums.push(`${new Bun.CryptoHasher('sha256').update(await Bun.file(join(out, name)).bytes()).digest('hex')}  ${name}`)
writeFileSync(join(out, 'SHA256SUMS'), sums.join('\n') + '\n')
console.log(`dist/release: ${binaries.length} binaries of ${VERSION} (commit ${commit}) and SHA256SUMS`)
