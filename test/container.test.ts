/**
 * The container image, built as a user builds it (Containerfile over `npm run container`'s root filesystem)
 * with Debian's buildah (vfs storage, chroot isolation: no daemon, no pulled base image), and the binary
 * run inside it: `list` on a registry in the /data volume, `serve` answering on loopback, `health`, and
 * the refusal to bind 0.0.0.0 without a token.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ensureDebianPackage } from './helpers/debian.ts'
import { EXAMPLE_REGISTRY, ROOT } from './helpers/paths.ts'

const SLOW = 300_000
const missing = ensureDebianPackage('buildah', 'buildah')
if (missing) console.warn(`skipping the container tests: ${missing}`)

describe.skipIf(missing !== undefined)('the container image (buildah, FROM scratch)', () => {
	let work: string
	let container: string
	const image = 'localhost/imageworks-loader:test'
	/** buildah with its own storage in the test's folder: nothing is left on the machine. */
	const buildah = (args: string[], options: { check?: boolean } = {}) => {
		const proc = Bun.spawnSync(['buildah', '--storage-driver', 'vfs', '--root', join(work, 'storage'), '--runroot', join(work, 'run'), ...args], {
			cwd: ROOT,
			stdout: 'pipe',
			stderr: 'pipe'
		})
		const result = { code: proc.exitCode, stdout: proc.stdout.toString(), stderr: proc.stderr.toString() }
		if (options.check !== false && result.code !== 0) throw new Error(`buildah ${args.join(' ')} failed (${result.code}):\n${result.stderr}`)
		return result
	}
	const inside = (args: string[], options: { check?: boolean } = {}) =>
		buildah(['run', '--isolation', 'chroot', '-v', `${join(work, 'data')}:/data`, container, '--', 'imageworks-loader', ...args], options)

	beforeAll(() => {
		work = mkdtempSync(join(tmpdir(), 'iwl-container-'))
		const assembled = Bun.spawnSync([process.execPath, 'scripts/container.ts'], { cwd: ROOT, stdout: 'pipe', stderr: 'pipe' })
		if (assembled.exitCode !== 0) throw new Error(`scripts/container.ts failed: ${assembled.stderr.toString()}`)
		buildah(['bud', '--isolation', 'chroot', '--format', 'docker', '-f', 'Containerfile', '-t', image, 'dist/container'])
		container = buildah(['from', image]).stdout.trim()
		// `buildah run` (1.28) mounts a fresh anonymous volume over each VOLUME of the image, hiding a bind
		// mount there; docker and podman do not. The working container drops the declaration (the image keeps
		// it, as the next test checks) so that /data is the test's folder, as `-v ./configs:/data` gives users.
		buildah(['config', '--volume', '/data-', container])
		// the volume: the example registry, writable by the image's non-root user
		const data = join(work, 'data')
		mkdirSync(data)
		copyFileSync(EXAMPLE_REGISTRY, join(data, 'model_registry.json'))
		chmodSync(work, 0o755)
		chmodSync(data, 0o777)
		chmodSync(join(data, 'model_registry.json'), 0o666)
	}, SLOW)

	afterAll(() => {
		if (!work) return
		if (container) buildah(['rm', container], { check: false })
		buildah(['rmi', '--all', '--force'], { check: false })
		rmSync(work, { recursive: true, force: true })
	})

	test('is configured as documented: non-root, entrypoint, serve on 0.0.0.0, the /data volume, a health check', () => {
		const config = JSON.parse(buildah(['inspect', '--type', 'image', image]).stdout) as {
			Docker: { config: { User: string; Entrypoint: string[]; Cmd: string[]; Volumes: Record<string, unknown>; Healthcheck?: { Test: string[] }; Env: string[] } }
		}
		const c = config.Docker.config
		expect(c.User).toBe('10001:10001')
		expect(c.Entrypoint).toEqual(['imageworks-loader'])
		expect(c.Cmd).toEqual(['serve', '--host', '0.0.0.0'])
		expect(Object.keys(c.Volumes)).toEqual(['/data'])
		expect(c.Healthcheck?.Test).toEqual(['CMD', 'imageworks-loader', 'health'])
		expect(c.Env).toContain('IMAGEWORKS_REGISTRY=/data/model_registry.json')
	})

	test('holds the binary and only the libraries it needs', () => {
		const mount = buildah(['mount', container]).stdout.trim()
		try {
			const files = Bun.spawnSync(['find', mount, '-type', 'f'], { stdout: 'pipe' })
				.stdout.toString()
				.trim()
				.split('\n')
				.map((f) => f.slice(mount.length))
				.sort()
			expect(files).toContain('/usr/local/bin/imageworks-loader')
			expect(files.filter((f) => !/^\/(usr\/local\/bin\/imageworks-loader|etc\/(passwd|group)|(usr\/)?lib(64|\/x86_64-linux-gnu|\/aarch64-linux-gnu)?\/[^/]+\.so[.\d]*)$/.test(f))).toEqual([])
		} finally {
			buildah(['umount', container], { check: false })
		}
	})

	test('lists the registry in the volume, and writes it as the non-root user', () => {
		const listed = inside(['list'])
		expect(listed.stdout).toContain('NAME')
		expect(listed.stdout.split('\n').length).toBeGreaterThan(3)
		expect(inside(['lock', 'tiny-captioner']).stdout).toContain('tiny-captioner: locked')
		expect(statSync(join(work, 'data', 'model_registry.json')).uid).toBe(10001)
		expect(statSync(join(work, 'data', 'model_registry.state.sqlite')).uid).toBe(10001)
		expect(inside(['unlock', 'tiny-captioner']).stdout).toContain('tiny-captioner: unlocked')
		const who = inside(['--version'])
		expect(who.stdout).toMatch(/^imageworks-loader\/\d+\.\d+\.\d+ \(commit [0-9a-f]+/)
	})

	test('serves on loopback and answers its own health check; 0.0.0.0 without a token is refused', async () => {
		const port = 20000 + Math.floor(Math.random() * 20000)
		const args = ['--storage-driver', 'vfs', '--root', join(work, 'storage'), '--runroot', join(work, 'run')]
		const serve = Bun.spawn(
			['buildah', ...args, 'run', '--isolation', 'chroot', '-v', `${join(work, 'data')}:/data`, container, '--', 'imageworks-loader', 'serve', '--port', String(port)],
			{ stdout: 'pipe', stderr: 'pipe' }
		)
		try {
			const deadline = Date.now() + 30_000
			let health: Response | undefined
			while (!health && Date.now() < deadline) {
				health = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined)
				if (!health) await Bun.sleep(100)
			}
			expect(health?.status).toBe(200)
			expect(((await health?.json()) as { status: string }).status).toBe('ok')
			const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as unknown[]
			expect(models.length).toBeGreaterThan(1)
			expect(inside(['health', '--url', `http://127.0.0.1:${port}`]).stdout).toBe('ok\n')
		} finally {
			serve.kill('SIGTERM')
			await serve.exited
		}
		const refused = inside(['serve', '--host', '0.0.0.0'], { check: false })
		expect(refused.code).not.toBe(0)
		expect(refused.stderr).toContain('refusing to bind 0.0.0.0 without IMAGEWORKS_API_TOKEN')
	}, SLOW)
})
