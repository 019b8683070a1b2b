/**
 * The OCI distribution-spec conformance suite (TypeScript port, see suite.ts) against a Slipway
 * gateway: every API and every data kind, with the 1.1+dev options (digest headers, tag parameters,
 * upload cancel) and sparse manifests. `strict`: an optional behaviour the Go suite would merely skip
 * (POST with a body answered 202, a mount answered 202, no OCI-Tag, no OCI-Filters-Applied, ...) fails
 * here, since Slipway claims all of them.
 *
 * Slipway refuses an image manifest whose layer was never pushed, as the spec allows ("A registry MAY
 * reject a manifest ... if it references manifests or blobs that do not exist ... it MUST result in one
 * or more MANIFEST_BLOB_UNKNOWN errors"), so the sparse image is held to that branch (`sparseImage:
 * 'reject'`); sparse indexes must be accepted.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { startSlipway, type TestSlipway } from '../helpers/slipway.ts';
import { runConformance } from './suite.ts';

describe('OCI distribution-spec conformance against Slipway', () => {
  let slipway: TestSlipway;
  beforeAll(async () => {
    slipway = await startSlipway();
  });
  afterAll(() => slipway?.stop());

  runConformance(() => slipway.url, {
    version: '1.1+dev',
    apis: {
      ping: true,
      pull: true,
      push: true,
      blobs: { atomic: true, delete: true, digestHeader: true, mountAnonymous: true, uploadCancel: true },
      manifests: { atomic: true, delete: true, digestHeader: true, tagParam: true },
      tags: { atomic: true, delete: true, list: true },
      referrer: true,
    },
    data: {
      image: true,
      index: true,
      indexList: true,
      sparse: true,
      artifact: true,
      subject: true,
      subjectMissing: true,
      artifactList: true,
      subjectList: true,
      dataField: true,
      nondistributable: true,
      customFields: true,
      noLayers: true,
      emptyBlob: true,
      sha512: true,
    },
    sparseImage: 'reject',
    strict: true,
    legacy: { enabled: true, automaticCrossmount: true },
  });
});
