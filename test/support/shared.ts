/** The project's reference material: `../shared/` beside the checkout (CI lays a copy there too). */
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/config.ts';

export const SHARED_DIR = process.env.SHARED_DIR ?? path.resolve(PROJECT_ROOT, '../shared');
