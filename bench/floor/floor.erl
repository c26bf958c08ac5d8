%% bench/floor, row 5: one Erlang VM hosting N idle gen_server processes
%% under one supervisor (one_for_one, permanent children, OTP's
%% intensity/period), each with a heartbeat every Interval ms
%% (erlang:send_after) sent to a registered bus process, which also holds
%% each worker's subscription (idle.<i>.>, a topic nobody publishes on).
%% Prints "ready" once every child has started, then idles until killed.
%%
%%   erlc -o DIR floor.erl
%%   erl -noshell -pa DIR -eval 'floor:main(N, IntervalMs)'
-module(floor).
-behaviour(gen_server).
-export([main/2, start_worker/2, init/1, handle_call/3, handle_cast/2, handle_info/2]).

main(N, Interval) ->
    Bus = spawn(fun() -> bus(#{}, 0) end),
    register(floor_bus, Bus),
    Children = [#{id => I, start => {?MODULE, start_worker, [I, Interval]},
                  restart => permanent, type => worker}
                || I <- lists:seq(0, N - 1)],
    {ok, _Sup} = supervisor:start_link({local, floor_sup}, ?MODULE, {sup, Children}),
    io:format("ready~n"),
    receive stop -> ok end.

%% The bus: subscriptions by pattern, heartbeats counted.
bus(Subs, Beats) ->
    receive
        {sub, Pattern, Pid} -> bus(Subs#{Pattern => Pid}, Beats);
        {hb, _Name, _Info} -> bus(Subs, Beats + 1);
        {stat, From} -> From ! {stat, maps:size(Subs), Beats}, bus(Subs, Beats)
    end.

start_worker(I, Interval) -> gen_server:start_link(?MODULE, {worker, I, Interval}, []).

%% init/1 for both behaviours: the supervisor's and each worker's.
init({sup, Children}) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 60}, Children}};
init({worker, I, Interval}) ->
    Name = <<"w", (integer_to_binary(I))/binary>>,
    floor_bus ! {sub, <<"idle.", (integer_to_binary(I))/binary, ".>">>, self()},
    erlang:send_after(Interval, self(), heartbeat),
    {ok, #{name => Name, interval => Interval, received => 0,
           started => erlang:monotonic_time(second)}}.

handle_call(_Req, _From, S) -> {reply, ok, S}.
handle_cast(_Msg, S) -> {noreply, S}.

handle_info(heartbeat, S = #{name := Name, interval := Interval, received := R, started := T0}) ->
    floor_bus ! {hb, Name, #{state => running, received => R,
                            uptime_s => erlang:monotonic_time(second) - T0}},
    erlang:send_after(Interval, self(), heartbeat),
    {noreply, S};
handle_info({event, _Topic, _Payload}, S = #{received := R}) ->
    {noreply, S#{received := R + 1}};
handle_info(_Other, S) ->
    {noreply, S}.
