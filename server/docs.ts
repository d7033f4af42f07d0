/** GET /docs (Score's spot-check readiness probe needs a 200 here) and GET /openapi.json. */

import { ACTIONS } from '../lib/protocol/actions.ts';
import { DOWNLOAD_FAILURE_MESSAGES } from '../lib/video/download.ts';

const errorSchema = { type: 'object', required: ['detail'], properties: { detail: { type: 'string' } } };
const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorSchema } } });
const downloadFailures = Object.values(DOWNLOAD_FAILURE_MESSAGES);

const HEALTH_DESCRIPTION =
  'Liveness for every caller: {"status": "ok", "model": {"name", "version"}, "ready"}. Callers on the ' +
  "miner's own machine (loopback; unless HEALTH_TRUST_LOOPBACK=false) and callers sending " +
  '`Authorization: Bearer <HEALTH_TOKEN>` also get the details: uptime_s, the model with its folder, ' +
  'onnxruntime providers, the ffmpeg binary, the queue depth and the security state (toggles, miner hotkey, ' +
  'metagraph sync and its last error).';

export const OPENAPI = {
  openapi: '3.1.0',
  info: { title: 'score-miner', version: '0.1.0', description: 'Score Vision (subnet 44) private-track miner' },
  paths: {
    '/challenge': {
      post: {
        summary: 'Detect timed actions in a video chunk',
        parameters: ['validator-hotkey', 'nonce', 'signature', 'miner-hotkey'].map((name) => ({
          name,
          in: 'header',
          required: false,
          description: 'Required when VERIFY_ENABLED/BLACKLIST_ENABLED; the X- prefixed spelling is accepted too',
          schema: { type: 'string' },
        })),
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['challenge_id', 'video_url'],
                properties: { challenge_id: { type: 'string' }, video_url: { type: 'string', format: 'uri' }, frames: { type: 'null' } },
                additionalProperties: true,
              },
            },
          },
        },
        responses: {
          '200': {
            description: 'Predictions; frame is an index at 25 fps',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['challenge_id', 'predictions', 'processing_time'],
                  properties: {
                    challenge_id: { type: 'string' },
                    processing_time: { type: 'number', description: 'seconds from receipt to reply' },
                    predictions: {
                      type: 'array',
                      items: {
                        type: 'object',
                        required: ['frame', 'action'],
                        properties: {
                          frame: { type: 'integer', minimum: 0 },
                          action: { type: 'string', enum: Object.keys(ACTIONS) },
                          confidence: { type: 'number', minimum: 0, maximum: 1 },
                        },
                      },
                    },
                  },
                },
              },
            },
          },
          '400': errorResponse('Body is not JSON or a field is missing / of the wrong type'),
          '401': errorResponse('Missing header, invalid signature or nonce'),
          '403': errorResponse('Caller not in the metagraph or stake too low'),
          '413': errorResponse('Body too large'),
          '422': errorResponse('The downloaded file is not a decodable video'),
          '500': errorResponse('Inference failed'),
          '502': errorResponse(
            `The video could not be downloaded; the detail names the class only (${downloadFailures.join(' / ')}), the cause goes to the miner's log`,
          ),
          '503': errorResponse('Queue full; retry after Retry-After seconds'),
        },
      },
    },
    '/health': {
      get: {
        summary: 'Liveness; model, ffmpeg, providers, queue and security state for loopback and HEALTH_TOKEN callers',
        description: HEALTH_DESCRIPTION,
        parameters: [
          {
            name: 'authorization',
            in: 'header',
            required: false,
            description: '`Bearer <HEALTH_TOKEN>`: the details from anywhere',
            schema: { type: 'string' },
          },
        ],
        responses: {
          '200': {
            description: 'Liveness, with the details when the caller may see them',
            content: {
              'application/json': {
                schema: {
                  type: 'object',
                  required: ['status', 'model', 'ready'],
                  properties: {
                    status: { type: 'string', enum: ['ok'] },
                    model: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'string' } } },
                    ready: { type: 'boolean', description: 'a worker holds the model and challenges are taken' },
                  },
                  additionalProperties: true,
                },
              },
            },
          },
        },
      },
    },
    '/docs': { get: { summary: 'This documentation (readiness probe)', responses: { '200': { description: 'OK' } } } },
  },
};

export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>score-miner API</title></head>
<body>
<h1>score-miner</h1>
<p>Score Vision (subnet 44) private-track miner. Machine-readable schema: <a href="/openapi.json">/openapi.json</a>.</p>
<h2>POST /challenge</h2>
<pre>{"challenge_id": "abc123", "video_url": "https://.../chunk.mp4", "frames": null}</pre>
<p>Answers <code>{"challenge_id", "predictions": [{"frame", "action", "confidence"}], "processing_time"}</code>;
<code>frame</code> is an integer index at 25 fps. Errors are <code>{"detail": "..."}</code> with status
400, 401, 403, 413, 422, 500, 502 or 503.</p>
<p>A video that cannot be downloaded is a 502 whose detail names the class only: ${downloadFailures.map((m) => `<code>${m}</code>`).join(', ')}; the cause is in the miner's log.</p>
<h2>GET /health</h2>
<p>Every caller: <code>{"status": "ok", "model": {"name", "version"}, "ready"}</code>. Callers on the miner's own
machine (unless <code>HEALTH_TRUST_LOOPBACK=false</code>) and callers sending
<code>Authorization: Bearer &lt;HEALTH_TOKEN&gt;</code> also see uptime, the model folder, onnxruntime providers,
the ffmpeg binary, the queue depth and the security state.</p>
<h2>Actions</h2>
<ul>${Object.keys(ACTIONS)
  .map((name) => `<li>${name}</li>`)
  .join('')}</ul>
</body></html>
`;
