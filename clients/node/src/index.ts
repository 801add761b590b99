export {
  NotifizzProducer,
  msgIdFor,
  type ProducerOptions,
  type PublishOptions,
  type PublishResult,
  type Publisher,
  type TrackEventOptions,
} from "./producer.js";
export { TrackContext, type TrackProps, type TrackResult } from "./context.js";
export {
  NotifizzProducerError,
  ValidationError,
  PublishError,
  ContextSentError,
  ClosedError,
  type Problem,
  type Reason,
} from "./errors.js";
export {
  encodeTrack,
  encodeWorkflow,
  encodeSend,
  encodeIdentify,
  encodeDetach,
  encodeSubscribe,
  encodeUnsubscribe,
  type Recipient,
  type Properties,
  type Identity,
  type DateInput,
  type TrackBody,
  type WorkflowBody,
  type SendBody,
  type IdentifyBody,
  type DetachBody,
  type SubscribeBody,
  type UnsubscribeBody,
} from "./bodies.js";
export { encodeJSON } from "./json.js";
export { validateBody, MAX_BODY_BYTES } from "./validate.js";
export {
  subjectFor,
  validateKey,
  validatePrefix,
  DEFAULT_PREFIX,
  MAX_KEY_LEN,
  KINDS_V1,
  KINDS_V2,
  ALL_KINDS,
  type Kind,
} from "./subject.js";
