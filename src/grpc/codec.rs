//! One pass-through codec for tonic: each direction is either [`Raw`] (the message is the bytes
//! as they are) or [`Proto`] (a prost message). The OTLP receiver serves
//! `PassThrough<Proto<Response>, Raw>` (it answers a prost response and takes the request as
//! the bytes tonic inflated, uncopied); a client that must send bytes as they are (tests, the
//! load generator) uses `PassThrough<Raw, Proto<Response>>`.

use std::marker::PhantomData;

use bytes::{Buf, BufMut, Bytes};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::Status;

/// How one direction's message is written and read.
pub trait Side: Send + 'static {
    type Item: Send + 'static;
    fn encode(item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status>;
    fn decode(src: &mut DecodeBuf<'_>) -> Result<Self::Item, Status>;
}

/// The message is the bytes as they are.
pub struct Raw;

/// The message is a prost message.
pub struct Proto<M>(PhantomData<fn() -> M>);

impl Side for Raw {
    type Item = Bytes;
    fn encode(item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
    fn decode(src: &mut DecodeBuf<'_>) -> Result<Bytes, Status> {
        Ok(src.copy_to_bytes(src.remaining()))
    }
}

impl<M: prost::Message + Default + Send + 'static> Side for Proto<M> {
    type Item = M;
    fn encode(item: M, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("cannot encode message: {e}")))
    }
    fn decode(src: &mut DecodeBuf<'_>) -> Result<M, Status> {
        M::decode(src).map_err(|e| Status::internal(format!("cannot decode message: {e}")))
    }
}

/// A codec that encodes with `E` and decodes with `D`.
pub struct PassThrough<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> PassThrough<E, D> {
    pub fn new() -> Self {
        PassThrough(PhantomData)
    }
}

impl<E, D> Default for PassThrough<E, D> {
    fn default() -> Self {
        Self::new()
    }
}

/// The encoder half of [`PassThrough`].
pub struct SideEncoder<S>(PhantomData<fn() -> S>);

/// The decoder half of [`PassThrough`].
pub struct SideDecoder<S>(PhantomData<fn() -> S>);

impl<S: Side> Encoder for SideEncoder<S> {
    type Item = S::Item;
    type Error = Status;
    fn encode(&mut self, item: S::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        S::encode(item, dst)
    }
}

impl<S: Side> Decoder for SideDecoder<S> {
    type Item = S::Item;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<S::Item>, Status> {
        S::decode(src).map(Some)
    }
}

impl<E: Side, D: Side> Codec for PassThrough<E, D> {
    type Encode = E::Item;
    type Decode = D::Item;
    type Encoder = SideEncoder<E>;
    type Decoder = SideDecoder<D>;
    fn encoder(&mut self) -> SideEncoder<E> {
        SideEncoder(PhantomData)
    }
    fn decoder(&mut self) -> SideDecoder<D> {
        SideDecoder(PhantomData)
    }
}

/// The codec a client uses to send `Bytes` as the request message and read a prost response.
pub fn raw_request<R: prost::Message + Default + Send + 'static>() -> PassThrough<Raw, Proto<R>> {
    PassThrough::new()
}
