//! The Confluent framing and the Avro decoders of every record type.

use mfh_schemas::{
    AvroRecord, ContactSnapshot, CrmEvent, DeadLetter, ExecutionCompleted, ExecutionRequested,
    Notification, StripeEvent, wire,
};

fn decode<T: AvroRecord>(body: &[u8]) {
    let _ = wire::decode_body::<T>(T::schema(), body);
}

/// The target: the frame's header, then the body as each record type.
pub fn avro(data: &[u8]) {
    if let Ok((_, body)) = wire::split_frame(data) {
        decode::<ExecutionRequested>(body);
        decode::<ExecutionCompleted>(body);
        decode::<DeadLetter>(body);
        decode::<StripeEvent>(body);
        decode::<Notification>(body);
        decode::<CrmEvent>(body);
        decode::<ContactSnapshot>(body);
    }
}
