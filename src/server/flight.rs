//! Arrow Flight SQL (`serve --flight-addr`): the catalog for ADBC, JDBC, DBeaver and any Flight
//! SQL client, with the same guard, limits, auth and metrics as HTTP.
//!
//! - statements: `GetFlightInfo(CommandStatementQuery)` plans the query (so a bad or forbidden
//!   one fails right there) and returns a ticket carrying the SQL; `DoGet` runs it, streaming;
//! - prepared statements: create (with the result schema and the `$n` parameter types), bind
//!   parameters with `DoPut`, execute, close;
//! - metadata: catalogs, schemas, tables (optionally with their Arrow schemas), table types,
//!   SqlInfo (read-only server), XDBC type info;
//! - auth: with a token configured, every call needs `authorization: Bearer TOKEN`; the
//!   handshake accepts HTTP Basic (any user name, the token as password) and answers with the
//!   bearer header, as ADBC's username/password option expects.
//!
//! Anything that writes (updates, ingest, transactions, Substrait) is refused.

use crate::http::client::ClientId;
use crate::query::{self, LimitExceeded, QueryError};
use crate::service::AppState;
use crate::telemetry::metrics;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery,
    CommandStatementUpdate, DoPutPreparedStatementResult, Nullable, ProstMessageExt, Searchable,
    SqlInfo, TicketStatementQuery, XdbcDataType,
};
use arrow_flight::{
    FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, IpcMessage,
    SchemaAsIpc, Ticket,
};
use base64::Engine;
use datafusion::common::ScalarValue;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Response, Status, Streaming};

const CATALOG: &str = "astropipe";
const SCHEMA: &str = "public";

static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "astropipe");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(SqlInfo::FlightSqlServerTransaction, 0i32);
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.build().expect("static SqlInfo")
});

static XDBC_INFO: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut b = XdbcTypeInfoDataBuilder::new();
    for (name, t) in [
        ("BOOLEAN", XdbcDataType::XdbcBit),
        ("INTEGER", XdbcDataType::XdbcInteger),
        ("BIGINT", XdbcDataType::XdbcBigint),
        ("REAL", XdbcDataType::XdbcFloat),
        ("DOUBLE", XdbcDataType::XdbcDouble),
        ("VARCHAR", XdbcDataType::XdbcVarchar),
        ("TIMESTAMP", XdbcDataType::XdbcTimestamp),
    ] {
        b.append(XdbcTypeInfo {
            type_name: name.into(),
            data_type: t,
            column_size: None,
            literal_prefix: None,
            literal_suffix: None,
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: name == "VARCHAR",
            searchable: Searchable::Full,
            unsigned_attribute: Some(false),
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(name.into()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: t,
            datetime_subcode: None,
            num_prec_radix: None,
            interval_precision: None,
        });
    }
    b.build().expect("static XDBC info")
});

/// A prepared statement: its SQL, bound parameter values, and who made it.
#[derive(Debug, Clone)]
struct Prepared {
    sql: String,
    params: Option<Vec<ScalarValue>>,
    owner: ClientId,
    used: Instant,
    /// The result schema last planned, for parameters of these types and this catalog
    /// version: a client that binds new values of the same types and asks for the
    /// `FlightInfo` again is answered without planning again.
    schema: Option<(SchemaKey, Schema)>,
}

/// What a prepared statement's result schema depends on besides its SQL.
#[derive(Debug, Clone, PartialEq)]
struct SchemaKey {
    types: Option<Vec<arrow::datatypes::DataType>>,
    version: u64,
}

/// A prepared statement not used for this long is closed.
pub const PREPARED_IDLE: Duration = Duration::from_secs(3600);
/// Prepared statements of all clients together.
const MAX_PREPARED: usize = 10_000;
/// Parameter batches read from one `DoPut` (the first with rows is used).
const MAX_PARAM_MESSAGES: usize = 16;

/// The Flight SQL service.
pub struct FlightSql {
    state: Arc<AppState>,
    prepared: Mutex<HashMap<Vec<u8>, Prepared>>,
    /// Prepared statements one client may keep open.
    per_client: usize,
}

type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

fn status(e: QueryError) -> Status {
    let message = e.to_string();
    match e {
        QueryError::Forbidden(_) => Status::permission_denied(message),
        QueryError::Invalid(_) => Status::invalid_argument(message),
        QueryError::Limit(l) => {
            metrics().refusals.with_label_values(&[l.name()]).inc();
            match l {
                LimitExceeded::Timeout { .. } => Status::deadline_exceeded(message),
                LimitExceeded::StatementSize { .. } | LimitExceeded::Depth { .. } => {
                    Status::invalid_argument(message)
                }
                LimitExceeded::Value { .. }
                | LimitExceeded::Batch { .. }
                | LimitExceeded::Spill { .. } => Status::resource_exhausted(message),
            }
        }
        QueryError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        QueryError::Busy(_) | QueryError::Unavailable(_) => Status::unavailable(message),
        QueryError::Internal(_) => Status::internal(message),
    }
}

fn read_only() -> Status {
    Status::permission_denied("the catalog is read-only")
}

fn ticket_info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<FlightInfo, Status> {
    Ok(FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(e.to_string()))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket {
            ticket: ticket.into(),
        }))
        .with_descriptor(descriptor))
}

/// `stream` with its first batch already pulled (as HTTP SQL does): an execution error then
/// gets a status of its own instead of ending a stream that has begun, and a small result —
/// first batch and end of stream, when the end is already known — leaves in the same write
/// as the response's headers, not one write and one wake-up of the client each.
async fn prefetch(
    mut stream: datafusion::execution::SendableRecordBatchStream,
) -> Result<impl Stream<Item = datafusion::error::Result<arrow::array::RecordBatch>> + Send, Status>
{
    use futures::FutureExt;
    let mut ready = Vec::with_capacity(2);
    let rest = match stream.next().await {
        Some(Err(e)) => return Err(status(QueryError::from_execution(&e))),
        None => None,
        Some(Ok(b)) => {
            ready.push(Ok(b));
            // One look, without waiting, at whether the result has ended already.
            match stream.next().now_or_never() {
                Some(None) => None,
                Some(Some(item)) => {
                    ready.push(item);
                    Some(stream)
                }
                None => Some(stream),
            }
        }
    };
    Ok(futures::stream::iter(ready).chain(futures::stream::iter(rest).flatten()))
}

fn batch_stream(
    schema: SchemaRef,
    batch: arrow::error::Result<arrow::array::RecordBatch>,
) -> DoGetStream {
    let s = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(futures::stream::once(async move {
            batch.map_err(FlightError::from)
        }))
        .map_err(Status::from);
    Box::pin(s)
}

impl FlightSql {
    pub fn new(state: Arc<AppState>, per_client: usize) -> Self {
        FlightSql {
            state,
            prepared: Mutex::new(HashMap::new()),
            per_client,
        }
    }

    fn check<T>(&self, req: &Request<T>) -> Result<(), Status> {
        let header = req
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if self.state.authorized(header) {
            Ok(())
        } else {
            metrics().auth_failures.with_label_values(&["flight"]).inc();
            Err(Status::unauthenticated("a valid bearer token is required"))
        }
    }

    /// The client a call comes from (its address, or the forwarded one from a trusted proxy).
    fn client<T>(&self, req: &Request<T>) -> ClientId {
        let peer = req
            .remote_addr()
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let headers = req.metadata().clone().into_headers();
        ClientId::of_request(peer, &headers, &self.state.conn.trusted_proxies)
    }

    /// The result schema of `sql` (planning checks syntax, tables and the read-only guard).
    async fn schema_of(&self, sql: &str, params: Option<&[ScalarValue]>) -> Result<Schema, Status> {
        let plan = query::plan(
            &self.state.ctx,
            sql,
            params.map(|p| p.to_vec()),
            &self.state.limits,
        )
        .await
        .map_err(|e| {
            count("invalid");
            status(e)
        })?;
        Ok(plan.schema().as_arrow().clone())
    }

    async fn run(
        &self,
        client: &ClientId,
        sql: &str,
        params: Option<&[ScalarValue]>,
    ) -> Result<Response<DoGetStream>, Status> {
        let t0 = Instant::now();
        let slot = self
            .state
            .query_slot(client)
            .map_err(|e| Status::resource_exhausted(e.to_string()))?;
        let limited = query::execute(
            &self.state.ctx,
            sql,
            params.map(|p| p.to_vec()),
            &self.state.limits,
            &self.state.budget,
        )
        .await
        .map_err(|e| {
            count(if matches!(e, QueryError::Forbidden(_)) {
                "forbidden"
            } else {
                "invalid"
            });
            status(e)
        })?;
        // Batches go out under the schema GetFlightInfo announced (drivers check that the
        // two agree; the physical one may differ in nullability).
        let schema = limited.planned_schema.clone();
        let truncated = limited.truncated.clone();
        let announced = schema.clone();
        let data = prefetch(limited.stream).await?.map(move |r| {
            let batch = r.map_err(|e| {
                FlightError::Tonic(Box::new(status(QueryError::from_execution(&e))))
            })?;
            arrow::record_batch::RecordBatch::try_new(announced.clone(), batch.columns().to_vec())
                .map_err(FlightError::Arrow)
        });
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(data);
        // The byte cap: the stream ends (and says so in the metrics) once the encoded data
        // reach it.
        let max_bytes = self.state.limits.max_result_bytes.unwrap_or(usize::MAX);
        let mut sent = 0usize;
        let cut = truncated.clone();
        let capped = encoded.take_while(move |r| {
            let go = sent < max_bytes;
            if let Ok(d) = r {
                sent += d.data_body.len() + d.data_header.len();
            }
            if !go {
                cut.store(true, std::sync::atomic::Ordering::Release);
                metrics()
                    .refusals
                    .with_label_values(&["result_bytes"])
                    .inc();
            }
            futures::future::ready(go)
        });
        // Count the query when its stream ends (its duration is the whole transfer); the
        // client's slot is held until then.
        let mut finished = false;
        let mut slot = Some(slot);
        let s = capped
            .map(move |r| r.map_err(Status::from))
            .chain(futures::stream::poll_fn(move |_| {
                if !finished {
                    finished = true;
                    slot.take();
                    metrics()
                        .query_seconds
                        .with_label_values(&["flight"])
                        .observe(t0.elapsed().as_secs_f64());
                    count("ok");
                    if truncated.load(std::sync::atomic::Ordering::Acquire) {
                        metrics().truncated_results.inc();
                    }
                }
                std::task::Poll::Ready(None)
            }));
        Ok(Response::new(Box::pin(s)))
    }

    fn prepared(&self, handle: &[u8]) -> Result<Prepared, Status> {
        let mut all = self
            .prepared
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let p = all.get_mut(handle).ok_or_else(|| {
            Status::not_found(
                "no such prepared statement (closed, expired, or made by another server)",
            )
        })?;
        p.used = Instant::now();
        Ok(p.clone())
    }

    /// Room for one more prepared statement of `owner`: expired ones are closed first;
    /// Err when the client (or the service) holds as many as allowed.
    fn room_for(
        &self,
        all: &mut HashMap<Vec<u8>, Prepared>,
        owner: &ClientId,
    ) -> Result<(), Status> {
        all.retain(|_, p| p.used.elapsed() < PREPARED_IDLE);
        let per_client = self.per_client;
        let mine = all.values().filter(|p| &p.owner == owner).count();
        if mine >= per_client {
            metrics()
                .refusals
                .with_label_values(&["prepared_statements"])
                .inc();
            return Err(Status::resource_exhausted(format!(
                "this client has {mine} open prepared statements, its limit (--max-client-prepared); close some"
            )));
        }
        if all.len() >= MAX_PREPARED {
            metrics()
                .refusals
                .with_label_values(&["prepared_statements"])
                .inc();
            return Err(Status::resource_exhausted(
                "too many open prepared statements; try again later",
            ));
        }
        Ok(())
    }

    fn table_names(&self) -> Vec<String> {
        let mut names = self
            .state
            .ctx
            .catalog(CATALOG)
            .and_then(|c| c.schema(SCHEMA))
            .map(|s| s.table_names())
            .unwrap_or_default();
        names.sort();
        names
    }
}

fn count(outcome: &str) {
    metrics()
        .queries
        .with_label_values(&["flight", outcome])
        .inc();
}

/// Parameter types of `$1, $2, ...` in a plan, as a schema (unknown types as Utf8).
fn parameter_schema(plan: &datafusion::logical_expr::LogicalPlan) -> Schema {
    let mut types: Vec<(usize, DataType)> = plan
        .get_parameter_types()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, t)| {
            Some((
                k.trim_start_matches('$').parse::<usize>().ok()?,
                t.unwrap_or(DataType::Utf8),
            ))
        })
        .collect();
    types.sort_by_key(|t| t.0);
    Schema::new(
        types
            .into_iter()
            .map(|(i, t)| Field::new(format!("${i}"), t, true))
            .collect::<Vec<_>>(),
    )
}

fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let IpcMessage(b) = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(b)
}

#[tonic::async_trait]
impl FlightSqlService for FlightSql {
    type FlightService = FlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let token = match &self.state.auth.token {
            None => String::new(),
            Some(want) => {
                let given = if let Some(b) = header.strip_prefix("Basic ") {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(b.trim())
                        .map_err(|_| Status::invalid_argument("bad Basic credentials"))?;
                    let text = String::from_utf8(raw)
                        .map_err(|_| Status::invalid_argument("bad Basic credentials"))?;
                    text.split_once(':')
                        .map(|(_, p)| p.to_string())
                        .unwrap_or_default()
                } else {
                    header.strip_prefix("Bearer ").unwrap_or("").to_string()
                };
                if !self.state.authorized(Some(&format!("Bearer {given}"))) {
                    metrics().auth_failures.with_label_values(&["flight"]).inc();
                    return Err(Status::unauthenticated("wrong credentials"));
                }
                want.to_string()
            }
        };
        let out = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        })]);
        let mut resp: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(out));
        if !token.is_empty()
            && let Ok(v) = format!("Bearer {token}").parse()
        {
            resp.metadata_mut().insert("authorization", v);
        }
        Ok(resp)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = self.schema_of(&query.query, None).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.clone().into_bytes().into(),
        };
        Ok(Response::new(ticket_info(
            &schema,
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let sql = String::from_utf8(ticket.statement_handle.to_vec())
            .map_err(|_| Status::invalid_argument("ticket is not UTF-8 SQL"))?;
        let client = self.client(&request);
        self.run(&client, &sql, None).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        self.check(&request)?;
        let owner = self.client(&request);
        {
            let mut all = self
                .prepared
                .lock()
                .map_err(|_| Status::internal("poisoned"))?;
            self.room_for(&mut all, &owner)?;
        }
        let plan = query::plan(&self.state.ctx, &query.query, None, &self.state.limits)
            .await
            .map_err(status)?;
        let dataset = plan.schema().as_arrow().clone();
        let params = parameter_schema(&plan);
        let handle = uuid::Uuid::new_v4().as_bytes().to_vec();
        {
            let mut all = self
                .prepared
                .lock()
                .map_err(|_| Status::internal("poisoned"))?;
            self.room_for(&mut all, &owner)?;
            all.insert(
                handle.clone(),
                Prepared {
                    sql: query.query,
                    params: None,
                    owner,
                    used: Instant::now(),
                    schema: None,
                },
            );
        }
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema: ipc_schema(&dataset)?,
            parameter_schema: if params.fields().is_empty() {
                Default::default()
            } else {
                ipc_schema(&params)?
            },
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.check(&request)?;
        let handle = query.prepared_statement_handle.to_vec();
        let mut p = self.prepared(&handle)?;
        let mut stream = FlightRecordBatchStream::new_from_flight_data(
            request.into_inner().map_err(FlightError::from),
        );
        // Only the first row is used: read until a batch has one, and no further.
        let mut row = None;
        for _ in 0..MAX_PARAM_MESSAGES {
            match stream.try_next().await.map_err(Status::from)? {
                Some(b) if b.num_rows() > 0 => {
                    row = Some(b.slice(0, 1));
                    break;
                }
                Some(_) => {}
                None => break,
            }
        }
        let row = row.as_ref();
        p.params = match row {
            None => None,
            Some(b) => Some(
                b.columns()
                    .iter()
                    .map(|c| ScalarValue::try_from_array(c, 0))
                    .collect::<datafusion::common::Result<Vec<_>>>()
                    .map_err(|e| Status::invalid_argument(e.to_string()))?,
            ),
        };
        if let Some(slot) = self
            .prepared
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .get_mut(&handle)
        {
            *slot = p;
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.into()),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let p = self.prepared(&cmd.prepared_statement_handle)?;
        let key = SchemaKey {
            types: p
                .params
                .as_ref()
                .map(|v| v.iter().map(|x| x.data_type()).collect()),
            version: self
                .state
                .version
                .load(std::sync::atomic::Ordering::Acquire),
        };
        let schema = match p.schema {
            Some((k, schema)) if k == key => schema,
            _ => {
                let schema = self.schema_of(&p.sql, p.params.as_deref()).await?;
                if let Some(slot) = self
                    .prepared
                    .lock()
                    .map_err(|_| Status::internal("poisoned"))?
                    .get_mut(cmd.prepared_statement_handle.as_ref())
                {
                    slot.schema = Some((key, schema.clone()));
                }
                schema
            }
        };
        Ok(Response::new(ticket_info(
            &schema,
            cmd.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let p = self.prepared(&cmd.prepared_statement_handle)?;
        let client = self.client(&request);
        self.run(&client, &p.sql, p.params.as_deref()).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<arrow_flight::Action>,
    ) -> Result<(), Status> {
        self.check(&request)?;
        self.prepared
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .remove(query.prepared_statement_handle.as_ref());
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.into_builder().schema();
        Ok(Response::new(ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG);
        let schema = b.schema();
        Ok(Response::new(batch_stream(
            schema,
            b.build()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        )))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        b.append(CATALOG, SCHEMA);
        let schema = b.schema();
        Ok(Response::new(batch_stream(
            schema,
            b.build()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        )))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        for name in self.table_names() {
            let schema = match self.state.ctx.table_provider(name.as_str()).await {
                Ok(p) => p.schema().as_ref().clone(),
                Err(_) => continue,
            };
            b.append(CATALOG, SCHEMA, &name, "TABLE", &schema)
                .map_err(Status::from)?;
        }
        let schema = b.schema();
        Ok(Response::new(batch_stream(
            schema,
            b.build()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        )))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.into_builder().schema();
        Ok(Response::new(ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let mut b = query.into_builder();
        b.append("TABLE");
        let schema = b.schema();
        Ok(Response::new(batch_stream(
            schema,
            b.build()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        )))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.clone().into_builder(&SQL_INFO).schema();
        Ok(Response::new(ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let b = query.into_builder(&SQL_INFO);
        let schema = b.schema();
        Ok(Response::new(batch_stream(
            schema,
            b.build()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        )))
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.check(&request)?;
        let schema = query.into_builder(&XDBC_INFO).schema();
        Ok(Response::new(ticket_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.check(&request)?;
        let b = query.into_builder(&XDBC_INFO);
        let schema = b.schema();
        Ok(Response::new(batch_stream(
            schema,
            b.build()
                .map_err(|e| arrow::error::ArrowError::ExternalError(Box::new(e))),
        )))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.check(&request)?;
        count("forbidden");
        Err(read_only())
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.check(&request)?;
        count("forbidden");
        Err(read_only())
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

/// Serves Flight SQL on `listener` until `shutdown` resolves: at most `max_connections`
/// connections (more are closed at once), each closed when it sends nothing for the header
/// timeout after connecting, or when nothing moves either way for the idle timeout; HTTP/2
/// pings find dead peers; every call ends within the request timeout.
pub async fn serve(
    state: Arc<AppState>,
    prepared_per_client: usize,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let conn = state.conn.clone();
    let max = (conn.max_connections / 4).max(16);
    let incoming = crate::http::conn::capped_incoming(
        listener,
        max,
        conn.header_timeout,
        conn.request_timeout,
    );
    let svc = arrow_flight::flight_service_server::FlightServiceServer::new(FlightSql::new(
        state,
        prepared_per_client,
    ))
    .max_decoding_message_size(16 << 20);
    tonic::transport::Server::builder()
        .timeout(conn.request_timeout)
        .concurrency_limit_per_connection(64)
        .max_concurrent_streams(64)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        .http2_max_header_list_size(64 << 10)
        .add_service(svc)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
