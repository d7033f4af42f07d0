/** The test fixtures kept in the repository (see test/fixtures/README.md for what each file is and where it came from). */
import path from 'node:path';
import { PROJECT_ROOT } from '../../lib/core/config.ts';

export const FIXTURES_DIR = path.join(PROJECT_ROOT, 'test/fixtures');
