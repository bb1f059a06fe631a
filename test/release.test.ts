/**
 * `npm run release` as a user meets its output: a binary per platform named with the version, a
 * SHA256SUMS that `sha256sum -c` accepts, each file of its platform's executable format, and the
 * linux-x64 one run from a folder outside the repository with an empty environment.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pkg from '../package.json' with { type: 'json' }
import { EXAMPLE_REGISTRY, ROOT } from './helpers/paths.ts'

const RELEASE = join(ROOT, 'dist', 'release')
const SLOW = 600_000
const name = (platform: string) => `imageworks-loader-${pkg.version}-${platform}${platform.startsWith('windows') ? '.exe' : ''}`

/** What the first bytes of a file say it is: the OS format and the CPU. */
function formatOf(path: string): string {
	const b = readFileSync(path).subarray(0, 4096)
	if (b[0] === 0x7f && b.toString('latin1', 1, 4) === 'ELF') {
		const machine = b.readUInt16LE(18)
		const cpu = machine === 0x3e ? 'x64' : machine === 0xb7 ? 'arm64' : `machine ${machine}`
		const musl = readFileSync(path).subarray(0, 65536).includes('ld-musl') ? '-musl' : ''
		return `linux-${cpu}${musl}`
	}
	if (b.readUInt32LE(0) === 0xfeedfacf) {
		const cpu = b.readUInt32LE(4)
		return `darwin-${cpu === 0x01000007 ? 'x64' : cpu === 0x0100000c ? 'arm64' : `cpu ${cpu}`}`
	}
	if (b.toString('latin1', 0, 2) === 'MZ') {
		const pe = b.readUInt32LE(0x3c)
		return `windows-${b.readUInt16LE(pe + 4) === 0x8664 ? 'x64' : 'other'}`
	}
	return 'unknown'
}

describe('npm run release', () => {
	let outside: string

	beforeAll(() => {
		const built = Bun.spawnSync([process.execPath, 'scripts/release.ts'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
		if (built.exitCode !== 0) throw new Error(`scripts/release.ts failed:\n${built.stderr.toString()}${built.stdout.toString()}`)
		outside = mkdtempSync(join(tmpdir(), 'iwl-download-'))
	}, SLOW)

	afterAll(() => {
		if (outside) rmSync(outside, { recursive: true, force: true })
	})

	test('one binary per platform, named with the version, and a SHA256SUMS that sha256sum -c accepts', () => {
		const platforms = ['darwin-arm64', 'darwin-x64', 'linux-arm64', 'linux-x64', 'linux-x64-baseline', 'linux-x64-musl', 'windows-x64']
		expect(readdirSync(RELEASE).sort()).toEqual(['SHA256SUMS', ...platforms.map(name)].sort())
		const check = Bun.spawnSync(['sha256sum', '-c', 'SHA256SUMS'], { cwd: RELEASE, stdout: 'pipe', stderr: 'pipe' })
		expect(check.exitCode).toBe(0)
		expect(check.stdout.toString().trim().split('\n').sort()).toEqual(platforms.map((p) => `${name(p)}: OK`).sort())
		for (const platform of platforms) {
			expect(`${platform}: ${formatOf(join(RELEASE, name(platform)))}`).toBe(`${platform}: ${platform.replace('-baseline', '')}`)
		}
	}, SLOW)

	test('the linux-x64 binary runs from a folder outside the repository with an empty environment', async () => {
		const binary = join(outside, 'imageworks-loader')
		copyFileSync(join(RELEASE, name('linux-x64')), binary)
		Bun.spawnSync(['chmod', '+x', binary])
		const registry = join(outside, 'model_registry.json')
		copyFileSync(EXAMPLE_REGISTRY, registry)
		const run = (args: string[]) => Bun.spawnSync([binary, ...args], { cwd: outside, env: {}, stdout: 'pipe', stderr: 'pipe' })

		const help = run(['--help'])
		expect(help.exitCode).toBe(0)
		expect(help.stdout.toString()).toContain('imageworks-loader')
		const version = run(['--version'])
		expect(version.stdout.toString()).toMatch(new RegExp(`^imageworks-loader/${pkg.version.replaceAll('.', '\\.')} \\(commit [0-9a-f]{12}`))
		const list = run(['--registry', registry, 'list', '--json'])
		expect(list.exitCode).toBe(0)
		expect((JSON.parse(list.stdout.toString()) as unknown[]).length).toBeGreaterThan(1)

		const serve = Bun.spawn([binary, '--registry', registry, 'serve', '--port', '0'], { cwd: outside, env: {}, stdout: 'pipe', stderr: 'pipe' })
		try {
			const reader = serve.stdout.getReader()
			let printed = ''
			while (!/on (http:\S+) /.test(printed)) {
				const { value, done } = await reader.read()
				if (done) throw new Error(`serve exited: ${printed}`)
				printed += new TextDecoder().decode(value)
			}
			const url = (/on (http:\S+) /.exec(printed) as RegExpExecArray)[1]
			const health = await fetch(`${url}/healthz`)
			expect(health.status).toBe(200)
			expect(((await health.json()) as { status: string }).status).toBe('ok')
		} finally {
			serve.kill('SIGTERM')
			expect(await serve.exited).toBe(0)
		}
	}, SLOW)
})
