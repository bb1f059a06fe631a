/**
 * `npm run demo`: the real llama.cpp server on the test suite's tiny generated models, and the loader
 * binary in front of it, end to end, as a person would see it: list, select, verify, lock, probe-vision,
 * bench, metrics and the API. The first run installs test/.venv (it compiles llama.cpp: a few minutes).
 *
 *     npm run demo            # then exits, stopping both servers
 *     npm run demo -- --keep  # leaves both servers up until Ctrl-C
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { startServer } from '../test/helpers/binary.ts'
import { fixturesDir, startLlamaServer } from '../test/helpers/llama.ts'

const ROOT = resolve(import.meta.dir, '..')
const BINARY = join(ROOT, 'dist', 'imageworks-loader')
const DEMO = join(ROOT, '.demo')
const keep = process.argv.includes('--keep')

function show(registry: string, args: string[]): void {
	console.log(`\n$ imageworks-loader ${args.map((a) => (/[\s'"()]/.test(a) ? `'${a}'` : a)).join(' ')}`)
	const r = Bun.spawnSync([BINARY, '--registry', registry, ...args], { stdout: 'pipe', stderr: 'pipe' })
	process.stdout.write(r.stdout.toString() + r.stderr.toString())
	console.log(`(exit ${r.exitCode})`)
}

rmSync(DEMO, { recursive: true, force: true })
mkdirSync(DEMO, { recursive: true })
console.log("Starting llama.cpp's server on tiny generated models (the first run compiles it) ...")
const backend = await startLlamaServer({ timeoutMs: 15 * 60_000 })
try {
	const models = fixturesDir()
	const visionDir = join(DEMO, 'vision-model')
	mkdirSync(visionDir)
	symlinkSync(join(models, 'tiny-llama.gguf'), join(visionDir, 'tiny-llama.gguf'))
	symlinkSync(join(models, 'tiny-mmproj.gguf'), join(visionDir, 'tiny-mmproj.gguf'))
	const cfg = (modelPath: string) => ({ base_url: backend.endpoint, model_path: modelPath })
	const registry = join(DEMO, 'model_registry.json')
	writeFileSync(
		registry,
		JSON.stringify(
			[
				{ name: 'tiny-text', backend: 'llamacpp', backend_config: cfg(join(models, 'tiny-llama.gguf')), served_model_id: backend.models.text, capabilities: { text: true }, roles: ['summary'], role_priority: { summary: 1 } },
				{ name: 'tiny-vision', backend: 'llamacpp', backend_config: cfg(visionDir), served_model_id: backend.models.vision, capabilities: { text: true, vision: true }, roles: ['caption'], role_priority: { caption: 1 } },
				{ name: 'tiny-embed', backend: 'llamacpp', backend_config: cfg(join(models, 'tiny-bert.gguf')), served_model_id: backend.models.embedding, capabilities: { text: false, embedding: true }, roles: ['embedding'] }
			],
			null,
			2
		) + '\n'
	)
	console.log(`model server: ${backend.endpoint} (serves ${Object.values(backend.models).join(', ')})`)

	await using loader = await startServer(registry)
	const url = loader.url
	console.log(`loader API:   ${url} (docs: ${url}/swagger)`)

	show(registry, ['list'])
	show(registry, ['select', '--role', 'caption', '--require-vision'])
	show(registry, ['verify', 'tiny-vision'])
	show(registry, ['lock', 'tiny-vision', '--set-expected'])
	show(registry, ['select', 'tiny-vision', '--check', '--json'])
	show(registry, ['probe-vision', 'tiny-vision'])
	show(registry, ['probe-vision', 'tiny-text'])
	show(registry, ['bench', 'tiny-text', '--requests', '5', '--max-tokens', '32'])
	show(registry, ['metrics'])
	console.log(`\n$ curl -s -X POST ${url}/v1/select -d '{"role": "caption"}'`)
	const answer = await fetch(`${url}/v1/select`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"role":"caption"}' })
	console.log(await answer.text())
	console.log('\nThe tiny models have random weights: their answers are deterministic gibberish, so the vision probe')
	console.log('is expected to say NOT SUPPORTED (the image does reach the model). A real vision model says VERIFIED.')
	if (keep) {
		console.log(`\nBoth servers are up: try ${url}/swagger . Ctrl-C to stop.`)
		await new Promise<void>((done) => process.once('SIGINT', () => done()))
	}
} finally {
	await backend.stop()
}
