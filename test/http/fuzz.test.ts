/**
 * OpenAPI fuzzing of the compiled binary with schemathesis (Python test tooling in test/fuzz, installed
 * with the model server's venv): generated requests for every operation, checked against the document.
 */
import { beforeAll, describe, expect, test } from 'bun:test'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startServer } from '../helpers/binary.ts'
import { ROOT } from '../helpers/paths.ts'
import { ensureVenv } from '../helpers/python.ts'
import { entry, tempDir, writeRegistry } from '../helpers/registry.ts'

/** A fresh clone installs the venv first (it compiles llama.cpp: a few minutes). */
const INSTALL_TIMEOUT = 15 * 60_000
let python = ''
beforeAll(async () => {
	python = await ensureVenv()
}, INSTALL_TIMEOUT)

describe('OpenAPI fuzzing (schemathesis)', () => {
	test('no 500, and every answer is a documented status with a documented body', async () => {
		using dir = tempDir()
		const model = join(dir.path, 'model')
		mkdirSync(model)
		writeFileSync(join(model, 'weights.bin'), Buffer.alloc(1000, 0x30))
		const registry = writeRegistry(join(dir.path, 'model_registry.json'), [
			entry('tiny', { modelPath: model, roles: ['caption'], aliases: ['tiny-alias'] }),
			// A backend port nothing listens on: probes and benches fail fast, outcome unknown.
			entry('remote', { backend: 'llamacpp', baseUrl: 'http://127.0.0.1:9/v1', capabilities: { vision: true }, roles: ['caption'] })
		])
		await using server = await startServer(registry, {
			cwd: dir.path,
			env: { IMAGEWORKS_PROBE_TIMEOUT: '2', IMAGEWORKS_CHECK_TIMEOUT: '1' }
		})
		const proc = Bun.spawn([python, '-m', 'pytest', '-q', '-p', 'no:cacheprovider', '-c', join(ROOT, 'test', 'fuzz', 'pytest.ini'), join(ROOT, 'test', 'fuzz', 'fuzz_openapi.py')], {
			cwd: dir.path,
			env: { PATH: process.env['PATH'] ?? '', HOME: dir.path, IWL_FUZZ_URL: server.url, IWL_FUZZ_EXAMPLES: '40', PYTHONDONTWRITEBYTECODE: '1' },
			stdin: 'ignore',
			stdout: 'pipe',
			stderr: 'pipe'
		})
		const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
		const report = `${stdout}\n${stderr}`.slice(-8000)
		expect({ exitCode, report: exitCode === 0 ? '' : report }).toEqual({ exitCode: 0, report: '' })
		expect(stdout).toMatch(/\d+ passed/)
		expect(server.output()).not.toContain('unexpected error')
	}, 300_000)
})
